#!/usr/bin/env python3
"""Checks deploy/Dockerfile against this project's rules (scripts/lint-deploy runs it).

hadolint covers general Dockerfile practice; these are the rules it does not know about,
or that must hold for this image in particular. The file is parsed with the `dockerfile`
package from PyPI, which wraps the parser Docker (BuildKit) itself uses, so line
continuations, JSON forms and flags are read as `docker build` reads them.

The rules: base images pinned by tag or digest, never `latest`; every COPY source exists
in the build context and is not dropped by .dockerignore, or comes from an earlier stage;
every Cargo workspace member is copied before `cargo build`; `apt-get install` has -y and
--no-install-recommends, runs with `apt-get update` and removes /var/lib/apt/lists in the
same RUN; the final stage has a non-root USER before its ENTRYPOINT, ENTRYPOINT and CMD in
JSON form, a HEALTHCHECK against /healthz, STOPSIGNAL SIGTERM if any, and EXPOSEs the port
of its SWITCHBOARD_BIND.

    scripts/lint_dockerfile.py [--context DIR] DOCKERFILE...

--context is the build context that COPY sources are looked up in (default: the
repository root, as in `docker build -f deploy/Dockerfile .`); its .dockerignore is
applied too. Exits 1 and prints `file:line: problem` lines when a rule fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

try:
    import dockerfile
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("lint_dockerfile.py needs the `dockerfile` package: pip install 'dockerfile>=3.4,<4'")

ROOT = Path(__file__).resolve().parent.parent


def image_tag(ref: str) -> str | None:
    """The tag of an image reference, `@digest` for a digest pin, or None if untagged."""
    if "@" in ref:
        return "@" + ref.split("@", 1)[1]
    last = ref.rsplit("/", 1)[-1]  # a registry's :port sits before the last slash
    return last.split(":", 1)[1] if ":" in last else None


class IgnoreRules:
    """A .dockerignore, matched the way Docker matches it: patterns in order, the last
    one that matches a path or any of its parent folders decides, `!` re-includes."""

    def __init__(self, path: Path):
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        if not path.is_file():
            return
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = pattern.strip("/")
            if pattern:
                self.rules.append((negate, re.compile(self._regex(pattern))))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "^", 0
        while i < len(pattern):
            c = pattern[i]
            if pattern.startswith("**/", i):
                out += "(.*/)?"
                i += 3
                continue
            if pattern.startswith("**", i):
                out += ".*"
                i += 2
                continue
            out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
            i += 1
        return out + "$"

    def excluded(self, rel: str) -> bool:
        parts = rel.strip("/").split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for negate, regex in self.rules:
            if any(regex.match(c) for c in candidates):
                verdict = not negate
        return verdict


class Checker:
    def __init__(self, path: Path, context: Path):
        self.path = path
        self.context = context
        self.ignore = IgnoreRules(context / ".dockerignore")
        self.problems: list[str] = []
        self.commands = dockerfile.parse_file(str(path))

    def fail(self, cmd, message: str) -> None:
        line = cmd.start_line if cmd is not None else 1
        self.problems.append(f"{self.path}:{line}: {message}")

    def run(self) -> list[str]:
        stages: list[list] = []  # the commands of each stage, FROM first
        global_args: dict[str, str] = {}
        for cmd in self.commands:
            if cmd.cmd == "FROM":
                stages.append([cmd])
            elif stages:
                stages[-1].append(cmd)
            elif cmd.cmd == "ARG":
                name, _, default = cmd.value[0].partition("=")
                global_args[name] = default
        if not stages:
            self.fail(None, "no FROM instruction")
            return self.problems
        names: list[str] = []
        for stage in stages:
            self.check_stage(stage, names, global_args)
        self.check_final(stages[-1])
        self.check_workspace(stages)
        return self.problems

    def check_workspace(self, stages: list[list]) -> None:
        """Cargo loads every workspace member to build any one package, so the stage that
        runs `cargo build` must COPY each member's manifest (a new member breaks the image
        build otherwise, and nothing else here builds the image)."""
        manifest = self.context / "Cargo.toml"
        if not manifest.is_file():
            return
        with open(manifest, "rb") as f:
            members = tomllib.load(f).get("workspace", {}).get("members", [])
        if not members:
            return
        dirs = sorted({p.relative_to(self.context).as_posix() for m in members for p in self.context.glob(m)
                       if (p / "Cargo.toml").is_file()})
        for stage in stages:
            builds = [c for c in stage if c.cmd == "RUN" and "cargo build" in " ".join(c.value)]
            if not builds:
                continue
            copied = [os.path.normpath(src) for c in stage if c.cmd == "COPY"
                      and not any(f.startswith("--from=") for f in c.flags) for src in c.value[:-1]]
            for member in dirs:
                needed = f"{member}/Cargo.toml"
                if not any(src == "." or needed == src or needed.startswith(src + "/") for src in copied):
                    self.fail(builds[0], f"workspace member `{member}` is not copied before `cargo build` (COPY {needed} and its sources)")

    def check_stage(self, stage: list, names: list[str], global_args: dict[str, str]) -> None:
        head = stage[0]
        ref = head.value[0]
        ref = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), ref)
        if "$" in ref:
            self.fail(head, f"base image `{head.value[0]}` uses an ARG without a default")
        elif ref.lower() in names:
            pass  # an earlier stage of this file
        elif ref != "scratch":
            tag = image_tag(ref)
            if tag is None:
                self.fail(head, f"base image `{ref}` has no tag: pin it (e.g. debian:bookworm-slim)")
            elif tag == "latest":
                self.fail(head, f"base image `{ref}` uses the `latest` tag: pin a release")
        for cmd in stage[1:]:
            if cmd.cmd in ("COPY", "ADD"):
                self.check_copy(cmd, names)
            elif cmd.cmd == "RUN":
                self.check_run(cmd)
        if len(head.value) == 3 and head.value[1].upper() == "AS":
            names.append(head.value[2].lower())

    def check_copy(self, cmd, names: list[str]) -> None:
        source_stage = next((f.split("=", 1)[1] for f in cmd.flags if f.startswith("--from=")), None)
        sources = list(cmd.value[:-1])  # the JSON form parses to the same list
        if source_stage is not None:
            if source_stage.lower() not in names and image_tag(source_stage) in (None, "latest"):
                self.fail(cmd, f"COPY --from={source_stage}: no earlier stage of that name (or a pinned image)")
            return
        if cmd.cmd == "ADD" and any(re.match(r"^[a-z]+://", s) for s in sources):
            self.fail(cmd, "ADD of a URL: download in a RUN step with a checksum, or COPY a file")
            return
        for source in sources:
            if any(ch in source for ch in "*?["):
                if not list(self.context.glob(source)):
                    self.fail(cmd, f"{cmd.cmd} source `{source}` matches nothing in {self.context}")
                continue
            rel = os.path.normpath(source).lstrip("/")
            target = self.context / rel
            if not target.exists():
                self.fail(cmd, f"{cmd.cmd} source `{source}` does not exist in {self.context}")
            elif rel != "." and self.ignore.excluded(rel):
                self.fail(cmd, f"{cmd.cmd} source `{source}` is excluded by .dockerignore")

    def check_run(self, cmd) -> None:
        text = " ".join(cmd.value)
        # Each command of a `&&`/`;` chain, as words.
        for part in re.split(r"&&|\|\||;|\|", text):
            try:
                words = shlex.split(part)
            except ValueError:
                words = part.split()
            if len(words) >= 2 and words[0] in ("apt-get", "apt") and "install" in words:
                if "--no-install-recommends" not in words:
                    self.fail(cmd, "apt-get install without --no-install-recommends")
                if not ({"-y", "-qy", "-yq", "--yes", "--assume-yes"} & set(words)):
                    self.fail(cmd, "apt-get install without -y (the build has no terminal)")
        if re.search(r"\bapt-get\b.*\binstall\b", text):
            if "apt-get update" not in text:
                self.fail(cmd, "apt-get install without apt-get update in the same RUN (stale lists from the cache)")
            if "rm -rf /var/lib/apt/lists" not in text:
                self.fail(cmd, "apt-get install without `rm -rf /var/lib/apt/lists/*` in the same RUN")
        elif re.search(r"\bapt-get update\b", text):
            self.fail(cmd, "apt-get update alone in a RUN: its cached layer goes stale; combine it with install")

    def check_final(self, stage: list) -> None:
        by_name: dict[str, list] = {}
        for cmd in stage:
            by_name.setdefault(cmd.cmd, []).append(cmd)
        entry = by_name.get("ENTRYPOINT", [None])[-1]
        users = by_name.get("USER", [])
        if entry is None:
            self.fail(stage[0], "the final stage has no ENTRYPOINT")
        else:
            if not entry.json:
                self.fail(entry, "ENTRYPOINT in shell form: use the JSON form so SIGTERM reaches the server")
            before = [u for u in users if u.start_line < entry.start_line]
            if not before:
                self.fail(entry, "no USER before ENTRYPOINT: the server would run as root")
        if users:
            user = users[-1].value[0].split(":", 1)[0]
            if user in ("root", "0"):
                self.fail(users[-1], "the final USER is root")
        for cmd in by_name.get("CMD", []):
            if not cmd.json:
                self.fail(cmd, "CMD in shell form: use the JSON form")
        checks = by_name.get("HEALTHCHECK", [])
        if not checks:
            self.fail(stage[0], "the final stage has no HEALTHCHECK")
        elif checks[-1].value and checks[-1].value[0].upper() == "NONE":
            self.fail(checks[-1], "HEALTHCHECK NONE: the image must check /healthz")
        elif "/healthz" not in checks[-1].original:
            self.fail(checks[-1], "the HEALTHCHECK does not ask /healthz")
        stop = by_name.get("STOPSIGNAL", [])
        if stop and stop[-1].value[0].upper() not in ("SIGTERM", "15", "TERM"):
            self.fail(stop[-1], "STOPSIGNAL is not SIGTERM, which is what starts the drain")
        # The port the server binds (ENV SWITCHBOARD_BIND) is the one exposed.
        bind = None
        for cmd in by_name.get("ENV", []):
            values = list(cmd.value)
            for key, value in zip(values[0::2], values[1::2]):
                if key == "SWITCHBOARD_BIND":
                    bind = (cmd, value)
        if bind is None:
            self.fail(stage[0], "the final stage does not set SWITCHBOARD_BIND (the default 127.0.0.1 is unreachable)")
        else:
            port = bind[1].rsplit(":", 1)[-1]
            exposed = {p.split("/", 1)[0] for cmd in by_name.get("EXPOSE", []) for p in cmd.value}
            if port not in exposed:
                self.fail(bind[0], f"SWITCHBOARD_BIND listens on port {port}, which is not EXPOSEd")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--context", type=Path, default=ROOT, help="the build context (default: the repository)")
    parser.add_argument("dockerfiles", nargs="+", type=Path)
    args = parser.parse_args()
    failed = False
    for path in args.dockerfiles:
        problems = Checker(path, args.context.resolve()).run()
        for problem in problems:
            print(problem)
        if problems:
            failed = True
        else:
            print(f"ok: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
