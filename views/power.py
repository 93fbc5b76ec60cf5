"""Page "Power": placeholder until the page is built."""

from views._common import page_header

PURPOSE = (
    "Estimate power by simulation across numbers of subjects and items, and draw the power curve."
)

page_header("Power", PURPOSE)
