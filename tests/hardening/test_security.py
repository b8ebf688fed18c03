"""Security: no checkpoint, workspace or config path executes code, and exports carry no patient
identifiers from DICOM headers.

Every loader gets the same payload: a pickle whose unpickling would write a marker file (`__reduce__`), saved
under a checkpoint's name both as a raw pickle and as `torch.save`'s zip. The marker must never appear."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from hardening_support import (MODEL_SIZE, PATIENT_FIELDS, all_text_of_tree, assert_user_error, make_frames,
                               run_cli, write_dicom, write_images, write_pickle_payloads)

from vivim_core.cli import main as core
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.errors import VivimError
from vivim_studio.cli import main as studio

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def payloads(tmp_path):
    marker = tmp_path / "code-ran.txt"
    yield write_pickle_payloads(tmp_path, marker), marker
    assert not marker.exists(), "a pickle was unpickled: code from a file ran"


@pytest.fixture
def vtus(tmp_path):
    return write_vtus_dataset(tmp_path / "vtus", num_videos=1, frames_per_video=4, size=(32, 32))


def test_the_payload_is_live(tmp_path):
    """The control: unpickling the payload does write the marker, so its absence below means something."""
    import pickle

    marker = tmp_path / "control.txt"
    raw, _ = write_pickle_payloads(tmp_path, marker, "control")
    pickle.loads(raw.read_bytes())
    assert marker.exists()


def test_core_loaders_refuse_pickles(payloads, tmp_path):
    from vivim_core.engine.checkpoint import CheckpointError, load_model, read_checkpoint_info
    from vivim_core.losses import AffinePriorError, load_affine_prior
    from vivim_core.model.segformer_weights import SegformerWeightsError, read_segformer_checkpoint

    files, marker = payloads
    for path in files:
        with pytest.raises(CheckpointError, match=f"{path} looks like a PyTorch pickle.*never unpickles"):
            load_model(path)
        with pytest.raises(CheckpointError, match="pickle"):
            read_checkpoint_info(path)
        with pytest.raises(AffinePriorError, match=str(path)):
            load_affine_prior(path)
        with pytest.raises(SegformerWeightsError, match=str(path)):
            read_segformer_checkpoint(path)
    hf_folder = tmp_path / "segformer"  # a Hugging Face folder with only the pickled weights
    hf_folder.mkdir()
    (hf_folder / "pytorch_model.bin").write_bytes(files[0].read_bytes())
    with pytest.raises(SegformerWeightsError, match="pytorch_model.bin: pickles are never loaded"):
        read_segformer_checkpoint(hf_folder)


def test_core_commands_refuse_pickles(payloads, tmp_path, capsys, vtus, tiny_checkpoint):
    files, marker = payloads
    video = write_images(tmp_path / "video", make_frames(3)[0])
    for path in files:
        for argv in (["predict", video, "--checkpoint", path, "--out", tmp_path / "pred", "--no-progress"],
                     ["finetune", "--data", vtus, "--checkpoint", path, "--out", tmp_path / "ft", "--no-progress"],
                     ["train", "--data", vtus, "--out", tmp_path / "t1", "--affine-prior", path],
                     ["train", "--data", vtus, "--out", tmp_path / "t2", "--init-segformer", path]):
            training = ["--device", "cpu", "--steps", "1", "--size", "32"] if argv[0] != "predict" else []
            code, _, err = run_cli(core, argv + training, capsys)
            assert_user_error(code, err, str(path))


def test_resume_refuses_pickled_run_files(payloads, tmp_path, capsys, vtus, tiny_checkpoint):
    """A run folder is data too: `--resume` reads last.safetensors and last.optim.safetensors (and JSON)."""
    from vivim_core.engine.train_config import TrainConfig

    files, marker = payloads
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(size=(32, 32), max_steps=1, device="cpu")
    (run / "config.json").write_text(json.dumps({"kind": "train", "train_config": config.to_dict()}))
    argv = ["train", "--data", vtus, "--out", run, "--resume", "--no-progress"]
    (run / "last.safetensors").write_bytes(files[1].read_bytes())
    (run / "last.optim.safetensors").write_bytes(files[0].read_bytes())
    code, _, err = run_cli(core, argv, capsys)
    assert_user_error(code, err, str(run / "last.safetensors"), "pickle")
    (run / "last.safetensors").write_bytes(tiny_checkpoint.read_bytes())  # a good model, a pickled optimizer
    code, _, err = run_cli(core, argv, capsys)
    assert_user_error(code, err, str(run / "last.optim.safetensors"), "unreadable optimizer state")


def test_studio_checkpoint_paths_refuse_pickles(payloads, tmp_path, capsys, monkeypatch):
    from vivim_studio.document import VideoDocument
    from vivim_studio.services import InferenceService, is_vivim_checkpoint
    from vivim_studio.services import ENV_VARIABLE
    from vivim_studio.services.finetune import finetune_on_corrections

    files, marker = payloads
    video = write_images(tmp_path / "video", make_frames(3)[0])
    for path in files:
        assert not is_vivim_checkpoint(path)  # the default-checkpoint search never picks it
        code, _, err = run_cli(studio, ["propose", video, "--checkpoint", path, "--device", "cpu"], capsys)
        assert_user_error(code, err, str(path), "looks like a PyTorch pickle")
        monkeypatch.setenv(ENV_VARIABLE, str(path))  # the default checkpoint, set by the environment
        code, _, err = run_cli(studio, ["propose", video, "--device", "cpu"], capsys)
        assert_user_error(code, err, str(path), "pickle")
        monkeypatch.delenv(ENV_VARIABLE)
        assert not (tmp_path / "video.vivim").exists()
        with VideoDocument.open(video, tmp_path / "ws") as doc:
            service = InferenceService(path, "cpu", size=(MODEL_SIZE, MODEL_SIZE))
            with pytest.raises(VivimError, match="pickle"):
                service.load()
            with pytest.raises(VivimError, match="pickle"):
                service.propose(doc)
            doc.set_mask(0, np.ones((48, 64), bool))
            doc.accept(0)
            with pytest.raises(VivimError, match="pickle"):
                finetune_on_corrections(doc, path, tmp_path / f"ft-{path.stem}", max_steps=1, size=(32, 32))


def test_workspace_files_are_never_unpickled(payloads, tmp_path, capsys):
    from vivim_studio.document import VideoDocument, WorkspaceError

    files, marker = payloads
    video = write_images(tmp_path / "video", make_frames(3)[0])
    workspace = tmp_path / "ws"
    with VideoDocument.open(video, workspace) as doc:
        doc.paint_stroke(1, [(10, 10)], 4)
    originals = {p: p.read_bytes() for p in workspace.rglob("*") if p.is_file() and p.name != ".lock"}
    for target in originals:
        target.write_bytes(files[0].read_bytes())
        with pytest.raises(WorkspaceError, match=str(target)):
            VideoDocument.open_workspace(workspace).close()
        code, _, err = run_cli(studio, ["export", workspace, "--out", tmp_path / "out"], capsys)
        assert_user_error(code, err, str(target))
        target.write_bytes(originals[target])


FORBIDDEN_CALLS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"), ("torch", "load"),
                   ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("marshal", "loads"),
                   ("shelve", "open"), ("dill", "load"), ("dill", "loads"), ("joblib", "load"),
                   ("cloudpickle", "load"), ("cloudpickle", "loads")}
FORBIDDEN_IMPORTS = {"pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "yaml"}


def _weights_only(call: ast.Call) -> bool:
    """torch.load(..., weights_only=True): PyTorch's restricted unpickler, which rebuilds tensors and plain data
    only (the import of official checkpoints, `vivim_core.official`, reads them so)."""
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in call.keywords)


def test_no_code_path_can_execute_a_file():
    """Static check of our own code: no unpickling (torch.load only with weights_only=True), no eval/exec, no
    np.load(allow_pickle=True)."""
    problems = []
    for path in sorted([*(PROJECT / "vivim_core").rglob("*.py"), *(PROJECT / "vivim_studio").rglob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        where = lambda node: f"{path.relative_to(PROJECT)}:{node.lineno}"  # noqa: E731
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                problems += [f"{where(node)} imports {a.name}" for a in node.names
                             if a.name.split(".")[0] in FORBIDDEN_IMPORTS]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_IMPORTS:
                problems.append(f"{where(node)} imports from {node.module}")
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in ("eval", "exec", "__import__"):
                    problems.append(f"{where(node)} calls {func.id}()")
                if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                    allowed = (func.value.id, func.attr) == ("torch", "load") and _weights_only(node)
                    if (func.value.id, func.attr) in FORBIDDEN_CALLS and not allowed:
                        problems.append(f"{where(node)} calls {func.value.id}.{func.attr}()")
                    if func.value.id in ("np", "numpy") and func.attr == "load" and any(
                            k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                            for k in node.keywords):
                        problems.append(f"{where(node)} calls np.load(allow_pickle=...)")
    assert not problems, "\n".join(problems)


# privacy -----------------------------------------------------------------------------------------------------
def test_exports_carry_no_patient_identifiers(tmp_path, tiny_checkpoint, capsys):
    frames = make_frames(4, 32, 48)[0]
    dicom = write_dicom(tmp_path / "cine.dcm", frames)
    import pydicom
    header = pydicom.dcmread(dicom)
    assert all(str(getattr(header, k)) == v for k, v in PATIENT_FIELDS.items())  # the file does carry them
    code, _, err = run_cli(studio, ["propose", dicom, "--checkpoint", tiny_checkpoint, "--device", "cpu", "--size",
                                    f"{MODEL_SIZE}x{MODEL_SIZE}"], capsys)
    assert code == 0, err
    from vivim_studio.document import VideoDocument
    from vivim_studio.document.export import ExportOptions, export_document

    workspace = tmp_path / "cine.dcm.vivim"
    with VideoDocument.open(dicom) as doc:
        doc.accept(1)
        doc.paint_stroke(2, [(10, 10)], 3)
        api = export_document(doc, tmp_path / "api", ExportOptions(format="png"))
    outputs = [tmp_path / "api", workspace]
    for fmt in ("vtus", "png", "nifti"):
        for selection in ([], ["--only-reviewed"]):
            out = tmp_path / f"cli-{fmt}{''.join(selection)}"
            code, _, err = run_cli(studio, ["export", workspace, "--format", fmt, "--out", out, *selection], capsys)
            assert code == 0, err
            outputs.append(out)
    assert api.manifest["source"]["metadata"]["modality"] == "US"  # technical fields are kept
    for folder in outputs:
        text = all_text_of_tree(folder)
        for keyword, value in PATIENT_FIELDS.items():
            for part in {value, *(p for p in value.split("^") if len(p) >= 5)}:
                assert part not in text, f"{keyword} ({part}) found in {folder}"
