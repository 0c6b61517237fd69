"""Every relative markdown link in README.md and docs/*.md points at a file that exists."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown_files():
  docs = os.path.join(ROOT, "docs")
  return [os.path.join(ROOT, "README.md")] + sorted(
      os.path.join(docs, name) for name in os.listdir(docs) if name.endswith(".md"))


def _links(text):
  """Link targets outside fenced code blocks."""
  prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  return _LINK.findall(prose)


def test_relative_links_resolve():
  broken = []
  for path in _markdown_files():
    with open(path, encoding="utf-8") as f:
      text = f.read()
    for target in _links(text):
      if re.match(r"https?://", target) or target.startswith(("#", "mailto:")):
        continue
      file_part = target.split("#")[0]
      if not os.path.exists(os.path.join(os.path.dirname(path), file_part)):
        broken.append(f"{os.path.relpath(path, ROOT)}: {target}")
  assert not broken, "broken links:\n" + "\n".join(broken)
