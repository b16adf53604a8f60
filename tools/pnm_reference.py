#!/usr/bin/python3
"""pnm_reference.py FILE... - decodes netpbm files with Pillow, the
independent reference of spec/pnm_spec.lua, and prints one line per file:
width height channels then the 8-bit samples (row-major, interleaved).
Pillow 9.4 gives a 16-bit or other
high-maxval PGM as mode I already scaled to 0..65535; it is brought to 8 bits
here as round(v * 255 / 65535), a second rounding, so such lines end with
the word "approx" (the spec allows 1 of difference there)."""
import sys
import numpy as np
from PIL import Image

for path in sys.argv[1:]:
    im = Image.open(path)
    a = np.array(im)
    approx = False
    if im.mode == "1":
        a = a.astype(np.uint8) * 255
    approx = im.mode in ("I", "I;16", "I;16B")
    if approx:
        a = np.floor(a.astype(np.float64) * 255.0 / 65535.0 + 0.5)
    a = a.astype(np.uint8)
    c = 1 if a.ndim == 2 else a.shape[2]
    print(im.size[0], im.size[1], c, " ".join(str(int(v)) for v in a.ravel()), "approx" if approx else "")
