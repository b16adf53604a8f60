#!/usr/bin/python3
"""tools/face_opencv_compare.py - ac.face.detect against OpenCV's
CascadeClassifier.detectMultiScale (python3-opencv) on real photographs and
on generated pictures that tile real faces at several scales.

For every photo and cascade it prints how many of OpenCV's boxes ours match
at IoU >= 0.6 (one to one, greedy by IoU), how many only OpenCV found and how
many only we found, and the largest corner offset of the matched pairs.

    /usr/bin/python3 tools/face_opencv_compare.py [--json] [--quick] [--out DIR] [IMAGE...]

Without images it uses the photos Debian ships: python3-skimage's
astronaut.png and camera.png, opencv-doc's messi5.jpg (when installed), and
three tiled pictures written to --out (default a temporary folder) from
lfw_subset.npy faces and astronaut.png. Exit status 1 when a photo has fewer
than 95 % of OpenCV's boxes matched or more than 5 % extra (with at least one
box allowed either way for photos with fewer than 20), 2 when cv2 is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
CASCADES = [  # (our name, OpenCV file, min_neighbors)
    ("frontalface_default", "haarcascades/haarcascade_frontalface_default.xml", 5),
    ("frontalface_alt2", "haarcascades/haarcascade_frontalface_alt2.xml", 3),
    ("lbp_frontalface_improved", "lbpcascades/lbpcascade_frontalface_improved.xml", 3),
    ("upperbody", "haarcascades/haarcascade_upperbody.xml", 3),  # tilted features
]


def tiled_pictures(out, layouts=((960, 720, (64, 96, 128)), (1280, 960, (48, 80, 160, 220)),
                                  (1600, 1200, (100, 140, 200, 260))), prefix="tiled"):
    """Pictures of many real faces at several scales on a grey background."""
    import numpy as np
    import cv2
    rng = np.random.RandomState(7)
    lfw = np.load(os.path.join(SKIMAGE, "lfw_subset.npy"))[:100]  # the faces half
    lfw = (lfw * 255).round().astype(np.uint8) if lfw.dtype != np.uint8 else lfw
    astro = cv2.imread(os.path.join(SKIMAGE, "astronaut.png"), cv2.IMREAD_GRAYSCALE)
    head = astro[30:230, 130:330]
    paths = []
    for k, (W, H, sizes) in enumerate(layouts):
        img = np.full((H, W), 128, np.uint8)
        img += rng.randint(0, 20, (H, W)).astype(np.uint8)
        y = 10
        while y < H - min(sizes):
            x, rowh = 10, 0
            while x < W - min(sizes):
                s = int(sizes[rng.randint(len(sizes))])
                if x + s > W - 5 or y + s > H - 5:
                    break
                src = head if rng.rand() < 0.2 else lfw[rng.randint(len(lfw))]
                img[y:y + s, x:x + s] = cv2.resize(src, (s, s), interpolation=cv2.INTER_CUBIC)
                x += s + int(rng.randint(8, 40))
                rowh = max(rowh, s)
            y += rowh + int(rng.randint(8, 40))
        p = os.path.join(out, "%s_%d.png" % (prefix, k + 1))
        cv2.imwrite(p, img)
        paths.append(p)
    return paths


def default_images(out):
    imgs = [os.path.join(SKIMAGE, "astronaut.png"), os.path.join(SKIMAGE, "camera.png")]
    messi = "/usr/share/doc/opencv-doc/examples/data/messi5.jpg"
    if os.path.exists(messi):
        imgs.append(messi)
    return imgs + tiled_pictures(out)


def iou(a, b):
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def match(ours, ref, thr=0.6):
    cand = sorted(((iou(p, q), i, j) for i, p in enumerate(ours) for j, q in enumerate(ref)), reverse=True)
    ua, ur, pairs = set(), set(), []
    for v, i, j in cand:
        if v < thr:
            break
        if i not in ua and j not in ur:
            ua.add(i)
            ur.add(j)
            pairs.append((i, j))
    offs = [max(abs(ours[i][k] - ref[j][k]) for k in range(4)) for i, j in pairs]
    return len(pairs), len(ref) - len(pairs), len(ours) - len(pairs), max(offs) if offs else 0


def ours(images, name, mn, threads):
    cmd = ["lua5.4", os.path.join(ROOT, "tools", "face_detect.lua"), "--cascade", name, "--scale", "1.1",
           "--min-neighbors", str(mn), "--min-size", "30", "--threads", str(threads)] + images
    env = dict(os.environ)
    env["LUA_PATH_5_4"] = "%s/lua/?.lua;%s/lua/?/init.lua;;" % (ROOT, ROOT)
    env["LUA_CPATH_5_4"] = "%s/build/?.so;;" % ROOT
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return {r["image"]: r for r in map(json.loads, out.splitlines())}


def main():
    args = [a for a in sys.argv[1:]]
    as_json = "--json" in args
    quick = "--quick" in args
    args = [a for a in args if a not in ("--json", "--quick")]
    out = None
    if "--out" in args:
        k = args.index("--out")
        out = args[k + 1]
        del args[k:k + 2]
        os.makedirs(out, exist_ok=True)
    try:
        import cv2
    except ImportError:
        print("face_opencv_compare: python3-opencv (cv2) is not installed", file=sys.stderr)
        return 2
    cv2.setNumThreads(2)
    out = out or tempfile.mkdtemp(prefix="ac-face-")
    images = args or default_images(out)
    cascades = CASCADES
    if quick:  # the spec's share: fewer and smaller pictures, the three face cascades
        images = [p for p in images if not os.path.basename(p).startswith(("tiled_2", "tiled_3", "camera"))]
        cascades = CASCADES[:3]
    rows, ok = [], True
    for name, xml, mn in cascades:
        cc = cv2.CascadeClassifier("/usr/share/opencv4/" + xml)
        mine = ours(images, name, mn, 2)
        for path in images:
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            ref = [list(map(int, r)) for r in cc.detectMultiScale(grey, 1.1, mn, minSize=(30, 30))]
            got = [b[:4] for b in mine[path]["boxes"]]
            both, only_cv, only_ours, off = match(got, ref)
            n = len(ref)
            good = (both >= 0.95 * n or n - both <= (1 if n < 20 else 0)) and \
                (only_ours <= 0.05 * max(n, 1) or (n < 20 and only_ours <= 1))
            ok = ok and good
            rows.append({"image": os.path.basename(path), "cascade": name, "opencv": n, "ours": len(got),
                         "both": both, "only_opencv": only_cv, "only_ours": only_ours, "max_offset": off,
                         "ok": good})
    if as_json:
        print(json.dumps({"rows": rows, "ok": ok}))
    else:
        print("%-16s %-26s %6s %5s %5s %7s %6s %6s" % ("photo", "cascade", "opencv", "ours", "both",
                                                     "only_cv", "extra", "offset"))
        for r in rows:
            print("%-16s %-26s %6d %5d %5d %7d %6d %6d%s" % (r["image"], r["cascade"], r["opencv"], r["ours"],
                                                          r["both"], r["only_opencv"], r["only_ours"],
                                                          r["max_offset"], "" if r["ok"] else "  FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
