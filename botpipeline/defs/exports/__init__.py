"""The exports domain: files for other tools (Open Assistant message trees)."""

import dagster as dg

from botpipeline.defs.exports.open_assistant import (daily_open_assistant_export,
                                                     simulated_open_assistant_export)

defs = dg.Definitions(assets=[daily_open_assistant_export, simulated_open_assistant_export])
