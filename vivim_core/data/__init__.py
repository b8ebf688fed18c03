"""Video and frame readers, dataset layouts, clip sampling, augmentation, synthetic videos."""
