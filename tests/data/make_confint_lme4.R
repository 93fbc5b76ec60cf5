# Make confint_lme4.csv: lme4's confint() (R 4.2.2, lme4 1.1-31). Not part of the suite.
# Run from the repository root:  Rscript tests/data/make_confint_lme4.R
# Cases: sleepstudy  Reaction ~ Days + (Days | Subject) (REML), and the singular
# Dyestuff2  Yield ~ 1 + (1 | Batch) (REML; its Batch SD is 0, so the profile stops at
# the bound). Methods "profile" (lme4's default settings), "profile_fine" (the profile
# sampled eight times finer, delta.cutoff = 1/64, so that its spline is closer to the
# exact crossings) and "Wald", both oldNames.
suppressPackageStartupMessages(library(lme4))
fix <- "../shared/fixtures/lme4"
if (!dir.exists(fix)) fix <- "/work/shared/fixtures/lme4"
sleep <- read.csv(file.path(fix, "sleepstudy.csv"))
sleep$Subject <- factor(sleep$Subject)
dye2 <- read.csv(file.path(fix, "Dyestuff2.csv"))
fits <- list(
  sleepstudy = lmer(Reaction ~ Days + (Days | Subject), sleep),
  dyestuff2 = lmer(Yield ~ 1 + (1 | Batch), dye2)
)
rows <- list()
for (case in names(fits)) for (method in c("profile", "profile_fine", "Wald"))
for (old in c(TRUE, FALSE)) {
  ci <- suppressMessages(suppressWarnings(if (method == "profile_fine")
    confint(profile(fits[[case]], delta.cutoff = 1 / 64, signames = old))
  else confint(fits[[case]], method = method, oldNames = old)))
  rows[[length(rows) + 1]] <- data.frame(
    case = case, method = method, oldNames = old, parm = rownames(ci),
    lower = sprintf("%.17g", ci[, 1]), upper = sprintf("%.17g", ci[, 2]))
}
write.csv(do.call(rbind, rows), "tests/data/confint_lme4.csv", row.names = FALSE,
  quote = FALSE)
