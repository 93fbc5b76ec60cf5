# Builds tests/data/predict_scale_lme4.json: lme4 1.1-31 results for
# (1) scale(Days) with 10% of the responses missing (R evaluates scale() on the model frame
#     before na.omit: mean and SD of Days over every row that has Days), REML and ML;
# (2) predict() on new data with new subject levels (allow.new.levels), re.form NULL and ~0.
# Run from the repository root: Rscript tests/data/make_predict_scale_lme4.R
library(lme4)
library(jsonlite)
data(sleepstudy)
set.seed(20261201)
na <- sleepstudy
na$Reaction[sample.int(nrow(na), 18)] <- NA
fits <- list()
for (reml in c(TRUE, FALSE)) {
  m <- lmer(log(Reaction) ~ scale(Days) + (1 | Subject), na, REML = reml,
            control = lmerControl(optimizer = "nloptwrap",
                                  optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15)))
  fits[[if (reml) "reml" else "ml"]] <- list(
    objective = if (reml) REMLcrit(m) else deviance(m),
    fixef = as.list(fixef(m)), theta = unname(getME(m, "theta")), sigma = sigma(m),
    nobs = nobs(m))
}
m <- lmer(Reaction ~ scale(Days) + (Days | Subject), sleepstudy,
          control = lmerControl(optimizer = "nloptwrap",
                                optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15)))
newdata <- data.frame(Subject = c("308", "309", "new1", "new2", "372"),
                      Days = c(0, 3.5, 9, 2, 12))
write_json(list(
  created_by = "tests/data/make_predict_scale_lme4.R",
  lme4 = as.character(packageVersion("lme4")),
  missing_rows = which(is.na(na$Reaction)) - 1,  # 0-based rows of sleepstudy set to NA
  scale_na = fits,
  predict = list(
    formula = "Reaction ~ scale(Days) + (Days | Subject)",
    objective = REMLcrit(m),
    newdata = newdata,
    full = unname(predict(m, newdata, allow.new.levels = TRUE)),
    population = unname(predict(m, newdata, re.form = ~0)),
    fitted = unname(fitted(m))
  )
), "tests/data/predict_scale_lme4.json", digits = NA, auto_unbox = TRUE)
