"""Reader for Twitter API v2 data as twarc2 writes it (``.jsonl`` / ``.jsonl.gz`` days):
``files`` streams blocks of lines, ``pages`` parses them, ``ingest`` writes a day's tables."""
