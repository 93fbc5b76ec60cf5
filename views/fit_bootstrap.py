"""Page "Fit & bootstrap": placeholder until the page is built."""

from views._common import page_header

PURPOSE = (
    "Simulate one data set from your model, fit it, and bootstrap the estimates to see how"
    " well they are recovered."
)

page_header("Fit & bootstrap", PURPOSE)
