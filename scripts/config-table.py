#!/usr/bin/env python3
"""Prints a Markdown table of a binary's environment variables, from its own --help.

Usage: scripts/config-table.py target/debug/gateway
Keeps README.md's configuration tables true to the code: regenerate them, don't edit them.
"""
import re
import subprocess
import sys

help_text = subprocess.run([sys.argv[1], "--help"], capture_output=True, text=True, check=True).stdout
rows = []
# clap prints each option as "  --flag <VALUE>\n          description [env: NAME=] [default: X]"
for block in re.split(r"\n(?=\s{2,}(?:-\w, )?--)", help_text):
    env = re.search(r"\[env: ([A-Z0-9_]+)(?:=[^\]]*)?\]", block)
    if not env:
        continue
    flag = re.search(r"(--[a-z0-9-]+)", block).group(1)
    default = re.search(r"\[default: ([^\]]*)\]", block)
    lines = block.strip().splitlines()[1:]
    text = " ".join(line.strip() for line in lines)
    text = re.sub(r"\s*\[(env|default|possible values): [^\]]*\]", "", text).strip()
    required = "required" if f"{flag} <" in help_text.split("\n")[2] else ""
    rows.append((env.group(1), flag, default.group(1) if default else required, text.replace("|", "\\|")))

print("| variable | flag | default | meaning |")
print("|---|---|---|---|")
for name, flag, default, text in rows:
    print(f"| `{name}` | `{flag}` | {f'`{default}`' if default and default != 'required' else default or ''} | {text} |")
