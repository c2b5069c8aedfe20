import os

os.environ.setdefault("MPLBACKEND", "Agg")
# the CLI's persistent compilation cache stays off in tests (never the user's folder); the
# tests of the cache give each subprocess its own temporary folder
os.environ["NNJAX_CACHE_DIR"] = "off"
