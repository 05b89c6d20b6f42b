"""Every file gradviz reads or writes goes through here: read.py (regular files only, bounded,
tensors without code) and write.py (temporary file + os.replace, paths fixed at start)."""
