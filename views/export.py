"""Page "Export": placeholder until the page is built."""

from views._common import page_header

PURPOSE = (
    "Download the model, the design, simulated data, results and a script that reproduces them."
)

page_header("Export", PURPOSE)
