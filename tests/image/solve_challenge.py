"""Run inside the worker image (`python -c <this file's text>`), offline: yt-dlp, configured as the
worker configures it, solves an `n` and a signature challenge of a tiny synthetic YouTube player.

The path is yt-dlp's own: its YouTube extractor's challenge director picks the available provider
(the one for the runtime the worker named), which runs yt-dlp-ejs's solver scripts in that runtime.
The player is seeded into the extractor's player cache, so nothing is fetched. Prints one JSON
object: the available providers, the runtime yt-dlp detected, and the solutions.
"""

import json
import sys
import tempfile
from pathlib import Path

import yt_dlp
from yt_dlp.extractor.youtube.jsc._builtin.quickjs import QuickJSJCP
from yt_dlp.extractor.youtube.jsc.provider import (
    JsChallengeRequest,
    JsChallengeType,
    NChallengeInput,
    SigChallengeInput,
)

from worker.downloader import DownloadTuning, MediaRequest, YtDlpDownloader, ydl_params

# The shape the solver looks for (an IIFE whose function builds a URL object and calls
# `.set("alr", "yes")` on it); its one other method is the "challenge": it reverses `n` and drops
# the first two characters of the signature.
PLAYER = r"""(function (g) {
  function Url(base, name, value) { this.q = {}; if (value !== undefined) this.q[name] = value; }
  Url.prototype.set = function (k, v) { this.q[k] = v; };
  Url.prototype.get = function (k) { return this.q[k]; };
  Url.prototype.sign = function () {
    if (this.q.n) this.q.n = this.q.n.split("").reverse().join("");
    if (this.q.s) this.q.s = encodeURIComponent(decodeURIComponent(this.q.s).slice(2));
  };
  function build(base, name, value) { var url = new Url(base, name, value); url.set("alr", "yes"); return url; }
}).call(this);
"""
PLAYER_URL = "https://www.youtube.com/s/player/0000abcd/player_ias.vflset/en_US/base.js"


def main() -> None:
    downloader = YtDlpDownloader()
    request = MediaRequest(url="https://www.youtube.com/watch?v=aaaaaaaaaaa", format="video")
    params = ydl_params(request, Path(tempfile.mkdtemp()), DownloadTuning(), js_runtime_path=downloader.js_runtime_path)
    with yt_dlp.YoutubeDL(params) as ydl:
        ie = ydl.get_info_extractor("Youtube")
        ie.initialize()
        ie._code_cache[ie._player_js_cache_key(PLAYER_URL)] = PLAYER
        director = ie._jsc_director
        requests = [
            JsChallengeRequest(JsChallengeType.N, NChallengeInput(PLAYER_URL, ["abcdefgh"]), "aaaaaaaaaaa"),
            JsChallengeRequest(JsChallengeType.SIG, SigChallengeInput(PLAYER_URL, ["0123456789"]), "aaaaaaaaaaa"),
        ]
        solved = director.bulk_solve(requests)
        runtime = ydl._js_runtimes.get("quickjs")
        info = runtime.info if runtime else None
        json.dump(
            {
                "js_runtimes": params["js_runtimes"],
                "available": sorted(k for k, p in director.providers.items() if p.is_available()),
                "runtime": None if info is None else {
                    "name": info.name, "path": info.path, "version": list(info.version_tuple),
                    "supported": info.supported,
                    # below it yt-dlp warns that solving is very slow
                    "recommended": list(QuickJSJCP._QJS_MIN_RECOMMENDED.get(info.name, ())),
                },
                "solutions": {r.type.value: dict(s.output.results) for r, s in solved},
            },
            sys.stdout,
        )


main()
