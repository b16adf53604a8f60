#!/usr/bin/python3
"""bench/face_bench.py - ac.face.detect against OpenCV's
CascadeClassifier.detectMultiScale (python3-opencv) on a 2-megapixel
picture (1920 x 1080, real faces of lfw_subset.npy and astronaut.png tiled
at several scales), same cascade, parameters and thread count.

    /usr/bin/python3 bench/face_bench.py [--threads 2] [--rounds 3] [--repeat 3]

Rounds alternate OpenCV (in this process) and adcorre (tools/face_detect.lua
in a subprocess); each side's figure is its best time over --repeat calls in
a round, and the table shows the best round of each, the ratio
adcorre / OpenCV (< 1: adcorre is faster) and the load average. Reading the
cascade XML is outside the timings on both sides.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import face_opencv_compare as cmp  # noqa: E402

CASES = [("frontalface_default", "haarcascades/haarcascade_frontalface_default.xml", 5),
         ("frontalface_alt2", "haarcascades/haarcascade_frontalface_alt2.xml", 3),
         ("lbp_frontalface_improved", "lbpcascades/lbpcascade_frontalface_improved.xml", 3)]


def opt(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def main():
    import cv2
    threads, rounds, repeat = opt("--threads", 2), opt("--rounds", 3), opt("--repeat", 3)
    out = tempfile.mkdtemp(prefix="ac-face-bench-")
    photo = cmp.tiled_pictures(out, [(1920, 1080, (60, 90, 130, 200))], prefix="group2mp")[0]
    grey = cv2.cvtColor(cv2.imread(photo), cv2.COLOR_BGR2GRAY)
    cv2.setNumThreads(threads)
    env = dict(os.environ)
    env["LUA_PATH_5_4"] = "%s/lua/?.lua;%s/lua/?/init.lua;;" % (ROOT, ROOT)
    env["LUA_CPATH_5_4"] = "%s/build/?.so;;" % ROOT
    print("picture %dx%d (%.2f MP), %d threads, %d rounds of %d calls" % (grey.shape[1], grey.shape[0],
          grey.size / 1e6, threads, rounds, repeat))
    print("%-26s %10s %10s %7s %6s  %s" % ("cascade", "opencv_ms", "adcorre_ms", "ratio", "faces", "load"))
    results = []
    for name, xml, mn in CASES:
        cc = cv2.CascadeClassifier("/usr/share/opencv4/" + xml)
        best_cv, best_ac, nfaces = 1e9, 1e9, None
        for _ in range(rounds):
            for _ in range(repeat):
                t = time.perf_counter()
                r = cc.detectMultiScale(grey, 1.1, mn, minSize=(30, 30))
                best_cv = min(best_cv, time.perf_counter() - t)
            cmd = ["lua5.4", os.path.join(ROOT, "tools/face_detect.lua"), "--cascade", name, "--min-neighbors",
                   str(mn), "--threads", str(threads), "--repeat", str(repeat), photo]
            res = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
            best_ac = min(best_ac, res["seconds"])
            nfaces = (len(r), len(res["boxes"]))
        load = os.getloadavg()[0]
        print("%-26s %10.1f %10.1f %7.2f %6s  %.1f" % (name, 1e3 * best_cv, 1e3 * best_ac, best_ac / best_cv,
                                                     "%d/%d" % nfaces, load))
        results.append({"cascade": name, "opencv_s": best_cv, "adcorre_s": best_ac, "ratio": best_ac / best_cv,
                        "faces_opencv": nfaces[0], "faces_adcorre": nfaces[1], "load": load})
    if "--json" in sys.argv:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
