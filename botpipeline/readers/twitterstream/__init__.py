"""Reader for Internet Archive Twitter Stream Grab days (v1.1 stream messages)."""
