"""Page "Model & design": placeholder until the page is built."""

from views._common import page_header

PURPOSE = (
    "Specify the model in lme4 syntax and the study design (subjects, items, within- and "
    "between-factors), or start from a preset."
)

page_header("Model & design", PURPOSE)
