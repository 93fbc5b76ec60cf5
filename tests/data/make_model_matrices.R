# Builds tests/data/model_matrices_r.json: R's model.matrix (names and values) for a battery
# of formulas, so the suite can check lmmcore's own builder against R without needing R.
# Run from the repository root: Rscript tests/data/make_model_matrices.R
library(jsonlite)
set.seed(7)
n <- 24
d <- data.frame(
  a = factor(rep(c("x", "y", "z"), 8)),
  b = factor(rep(c("p", "p", "q", "q"), 6)),
  o = factor(rep(c("lo", "mid", "hi", "top"), each = 6), levels = c("lo", "mid", "hi", "top"),
             ordered = TRUE),
  x = round(rnorm(n), 3),
  z = round(runif(n, 1, 5), 3),
  l = rep(c(TRUE, FALSE, FALSE), 8)
)
cases <- list(
  list(f = "~ a"), list(f = "~ 0 + a"), list(f = "~ a - 1"), list(f = "~ a:b"),
  list(f = "~ 0 + a:b"), list(f = "~ a*b"), list(f = "~ b*a"), list(f = "~ x:a"),
  list(f = "~ x + x:a"), list(f = "~ a/b"), list(f = "~ (a+b):x"), list(f = "~ (a+b+x)^2"),
  list(f = "~ a*b*x - a:b:x"), list(f = "~ C(a, sum)"), list(f = "~ C(a, contr.sum):b"),
  list(f = "~ C(a, helmert) + b"), list(f = "~ o"), list(f = "~ C(o, treatment)"),
  list(f = "~ C(a, poly)"), list(f = "~ I(x^2) + log(z) + x"), list(f = "~ scale(x) + z"),
  list(f = "~ x*z"), list(f = "~ 0 + x + a"), list(f = "~ 0 + b:x"), list(f = "~ a:x + b:x"),
  list(f = "~ l"), list(f = "~ l*x"), list(f = "~ a + b + a:b + a:b:x"),
  list(f = "~ I(x*2 - 1) + I(-x^2) + I((x + 1)^3)"),
  list(f = "~ log10(z) + sqrt(z) + exp(x/10) + abs(x - 3)"), list(f = "~ log2(z) + log1p(z)"),
  list(f = "~ b:a:o"), list(f = "~ (a + b)^2"), list(f = "~ o*x"), list(f = "~ -1 + b + a"),
  list(f = "~ a*b", con = list(a = "contr.sum")),
  list(f = "~ a + o", con = list(a = "contr.helmert", o = "contr.treatment")),
  list(f = "~ a*x", con = list(a = "diff"))
)
out <- list()
for (cs in cases) {
  con <- cs$con
  if (!is.null(con) && identical(con$a, "diff")) con$a <- MASS::contr.sdif
  mm <- model.matrix(as.formula(cs$f), d, contrasts.arg = con)
  out[[length(out) + 1]] <- list(
    formula = cs$f,
    contrasts = if (is.null(cs$con)) NULL else lapply(cs$con, function(v) sub("contr.", "", v, fixed = TRUE)),
    colnames = colnames(mm),
    matrix = unname(split(unname(mm), row(mm)))
  )
}
write_json(list(
  created_by = "tests/data/make_model_matrices.R",
  R = R.version.string,
  data = list(a = as.character(d$a), b = as.character(d$b), o = as.character(d$o),
              o_levels = levels(d$o), x = d$x, z = d$z, l = d$l),
  cases = out
), "tests/data/model_matrices_r.json", digits = NA, auto_unbox = TRUE, null = "null")
