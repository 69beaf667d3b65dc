"""Stream pre-training documents (lists of sentences) from local text files or a hub dataset.

A *document* is a ``list[str]`` of sentences in reading order. BERT's next-sentence task needs
document boundaries (a NotNext segment must come from another document) and sentence boundaries
(segments are cut between sentences), so every reader here yields exactly that and nothing holds
more than one document of a file in memory.

Layouts of the local corpora (``../shared/data/corpus``) and how they map to documents:

- ``"lines"``: Google's ``create_pretraining_data`` input — one sentence (or paragraph) per line,
  a blank line between documents (``bert_sample_text.txt``).
- ``"file"``: the whole file is one document; blank lines separate paragraphs whose lines are
  hard-wrapped (Gutenberg books: one book = one document; State of the Union and inaugural
  addresses: one speech = one document).
- ``"wikitext"``: WikiText dumps — a top-level ``" = Title = "`` line starts an article (one
  article = one document); sub-headings are dropped, the ``@-@``-style tokenization is undone and
  ``<unk>`` becomes BERT's ``[UNK]`` so it stays one (never masked) token.

Long paragraph lines are cut into sentences by :func:`split_sentences`, a small rule-based
splitter: good enough for segment boundaries, and it never loses or reorders text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

Layout = Literal["lines", "file", "wikitext"]
LAYOUTS: tuple[str, ...] = ("lines", "file", "wikitext")

# Words that end with a period without ending a sentence (compared lower-cased, period removed).
_ABBREVIATIONS = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "prof",
        "gen",
        "col",
        "capt",
        "lt",
        "sgt",
        "rev",
        "hon",
        "gov",
        "sen",
        "rep",
        "mt",
        "no",
        "nos",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "inc",
        "ltd",
        "co",
        "corp",
        "dept",
        "univ",
        "fig",
        "vol",
        "ch",
        "pp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, and
# a next sentence that starts (after optional opening quotes/brackets) with a capital letter.
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]*[A-Z])")
_WIKITEXT_TITLE = re.compile(r"^= [^=].* =$")
_WIKITEXT_HEADING = re.compile(r"^(= )+.*( =)+$")
_WIKITEXT_DETOKENIZE = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "[UNK]"))


def _ends_sentence(text: str, punct_at: int) -> bool:
    """Whether the period at ``punct_at`` ends a sentence (not an abbreviation or an initial)."""
    before = text[:punct_at]
    if text[punct_at] != "." or not before or before[-1].isspace():
        return True  # "!", "?", or a detached period as in tokenized text ("end . Next")
    word = before.rsplit(None, 1)[-1].lstrip("\"'“‘([")
    return not (
        (len(word) == 1 and word.isalpha()) or "." in word or word.lower() in _ABBREVIATIONS
    )


def split_sentences(text: str) -> list[str]:
    """Cut a paragraph into sentences at ``. ! ?`` followed by a capitalised word.

    Abbreviations (``Mr.``, ``e.g.``), initials (``H. gammarus``, ``Harry S. Truman``) and dotted
    acronyms (``U.S.``) do not end a sentence. Returns the stripped, non-empty pieces.
    """
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if _ends_sentence(text, match.start()):
            sentences.append(text[start : match.end()].strip())
            start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


def _sentences(paragraph: str, sentence_split: bool) -> list[str]:
    paragraph = paragraph.strip()
    if not paragraph:
        return []
    return split_sentences(paragraph) if sentence_split else [paragraph]


def _lines_documents(lines: Iterable[str], sentence_split: bool) -> Iterator[list[str]]:
    document: list[str] = []
    for line in lines:
        if line.strip():
            document.extend(_sentences(line, sentence_split))
        elif document:
            yield document
            document = []
    if document:
        yield document


def _file_document(lines: Iterable[str], sentence_split: bool) -> Iterator[list[str]]:
    document: list[str] = []
    paragraph: list[str] = []
    for line in lines:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            document.extend(_sentences(" ".join(paragraph), sentence_split))
            paragraph = []
    document.extend(_sentences(" ".join(paragraph), sentence_split))
    if document:
        yield document


def _wikitext_documents(lines: Iterable[str], sentence_split: bool) -> Iterator[list[str]]:
    document: list[str] = []
    for raw in lines:
        line = raw.strip()
        if _WIKITEXT_TITLE.match(line):
            if document:
                yield document
            document = []
        elif line and not _WIKITEXT_HEADING.match(line):
            for old, new in _WIKITEXT_DETOKENIZE:
                line = line.replace(old, new)
            document.extend(_sentences(line, sentence_split))
    if document:
        yield document


_READERS = {"lines": _lines_documents, "file": _file_document, "wikitext": _wikitext_documents}


def read_documents(
    path: str | Path, layout: Layout = "lines", sentence_split: bool = True
) -> Iterator[list[str]]:
    """Yield the documents of one text file, reading it line by line.

    ``sentence_split`` applies :func:`split_sentences` to every line/paragraph; turn it off for
    input that is already one sentence per line and must not be re-cut.
    """
    if layout not in _READERS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    with open(path, encoding="utf-8", errors="replace") as handle:
        yield from _READERS[layout](handle, sentence_split)


def iter_file_documents(
    files: Sequence[str | Path], layout: Layout = "lines", sentence_split: bool = True
) -> Iterator[list[str]]:
    """Yield the documents of several files in order (a document never spans two files)."""
    for path in files:
        yield from read_documents(path, layout, sentence_split)


def resolve_files(paths: Iterable[str | Path], pattern: str = "*.txt") -> list[Path]:
    """Expand directories to their sorted ``pattern`` files, so a build's input order is fixed."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.glob(pattern) if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(path)
    return files


def select_file_shard(files: Sequence[str | Path], num_shards: int, shard_index: int) -> list[Path]:
    """Every ``num_shards``-th file starting at ``shard_index``: disjoint inputs for parallel
    builders (give each its own output directory and seed)."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index {shard_index} not in [0, {num_shards})")
    return [Path(p) for p in files][shard_index::num_shards]


def documents_from_records(
    records: Iterable[Mapping[str, Any]],
    text_field: str = "text",
    rows_per_document: int = 1,
    sentence_split: bool = True,
) -> Iterator[list[str]]:
    """Documents from dataset rows: each row's text, cut at newlines then into sentences.

    ``rows_per_document`` groups consecutive rows into one document, for datasets whose rows are
    single sentences with no document boundary (the hub's BookCorpus copies); Wikipedia-style
    rows are whole articles and keep the default 1.
    """
    if rows_per_document < 1:
        raise ValueError("rows_per_document must be >= 1")
    document: list[str] = []
    rows = 0
    for record in records:
        for paragraph in str(record[text_field]).split("\n"):
            document.extend(_sentences(paragraph, sentence_split))
        rows += 1
        if rows == rows_per_document:
            if document:
                yield document
            document, rows = [], 0
    if document:
        yield document


def load_hub_documents(
    path: str,
    name: str | None = None,
    split: str = "train",
    text_field: str = "text",
    rows_per_document: int = 1,
    **load_kwargs: Any,
) -> Iterator[list[str]]:
    """Stream documents from a hub dataset (e.g. ``"wikimedia/wikipedia", "20231101.en"``).

    ``streaming=True`` keeps the download incremental and memory flat; needs network access.
    """
    import datasets  # deferred: only hub users pay for the import

    rows = datasets.load_dataset(path, name, split=split, streaming=True, **load_kwargs)
    return documents_from_records(rows, text_field, rows_per_document)
