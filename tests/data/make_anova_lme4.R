# Make anova_lme4.csv: lme4's anova() on two nested pairs (R 4.2.2, lme4 1.1-31).
# Not part of the suite. Run from the repository root:
#   Rscript tests/data/make_anova_lme4.R
# kind "lme4": anova(m1, m0) as a user calls it (REML fits are refitted with ML by lme4's
#   refitML, at its default bobyqa tolerances);
# kind "tight": anova() of the same models fitted with REML = FALSE to tight tolerances,
#   the optimum lmmcore's fitter reaches.
suppressPackageStartupMessages(library(lme4))
fix <- "../shared/fixtures/lme4"
if (!dir.exists(fix)) fix <- "/work/shared/fixtures/lme4"
sleep <- read.csv(file.path(fix, "sleepstudy.csv"))
sleep$Subject <- factor(sleep$Subject)
pen <- read.csv(file.path(fix, "Penicillin.csv"))
tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(
  ftol_abs = 1e-14, ftol_rel = 1e-15, xtol_abs = 1e-12, xtol_rel = 1e-12, maxeval = 1e5))
pairs <- list(
  sleepstudy = list(data = sleep, reml = TRUE,
    m0 = Reaction ~ Days + (1 | Subject), m1 = Reaction ~ Days + (Days | Subject)),
  penicillin = list(data = pen, reml = FALSE,
    m0 = diameter ~ 1 + (1 | plate), m1 = diameter ~ 1 + (1 | plate) + (1 | sample))
)
rows <- list()
for (nm in names(pairs)) {
  p <- pairs[[nm]]
  m0 <- lmer(p$m0, p$data, REML = p$reml)
  m1 <- lmer(p$m1, p$data, REML = p$reml)
  t0 <- lmer(p$m0, p$data, REML = FALSE, control = tight)
  t1 <- lmer(p$m1, p$data, REML = FALSE, control = tight)
  tabs <- list(lme4 = anova(m1, m0), tight = anova(t1, t0))
  for (kind in names(tabs)) {
    a <- as.data.frame(tabs[[kind]])
    f <- c(m0 = deparse1(p$m0), m1 = deparse1(p$m1))
    rows[[length(rows) + 1]] <- data.frame(
      pair = nm, kind = kind, REML = p$reml, model = rownames(a),
      formula = unname(f[sub("^t", "m", rownames(a))]), a, check.names = FALSE)
  }
}
out <- do.call(rbind, rows)
out$model <- sub("^t", "m", out$model)
for (col in names(out)) if (is.double(out[[col]]))
  out[[col]] <- ifelse(is.na(out[[col]]), NA, sprintf("%.17g", out[[col]]))
write.csv(out, "tests/data/anova_lme4.csv", row.names = FALSE, quote = FALSE)
