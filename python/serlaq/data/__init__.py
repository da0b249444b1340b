"""From audio files on disk to clips, waveforms, features and splits."""
