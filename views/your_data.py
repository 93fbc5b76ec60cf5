"""Page "Your data": placeholder until the page is built."""

from views._common import page_header

PURPOSE = (
    "Upload pilot data, fit your model to it, and use the estimates as the starting point "
    "for a power analysis."
)

page_header("Your data", PURPOSE)
