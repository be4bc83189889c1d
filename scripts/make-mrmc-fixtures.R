# Reference multi-reader multi-case (MRMC) analyses from MRMCaov for test/stats/mrmc*.test.ts.
#
#   Rscript scripts/make-mrmc-fixtures.R test/fixtures/stats/mrmc
#
# Writes one JSON file per study: the ratings (test, reader, case, truth, rating) and, for each covariance method
# (DeLong, jackknife, unbiased), MRMCaov's Obuchowski-Rockette-Hillis results for random readers and cases (RRRC),
# fixed readers (FRRC) and fixed cases (RRFC): the per-reader AUCs, the covariance matrix, the variance components
# (reader, treatment x reader, error, Cov1-Cov3), the global test, the pairwise differences and the per-test means;
# and the same for the sensitivity and specificity of the binary call rating >= binaryCut (jackknife).
# Studies: MRMCaov's published VanDyke data (checked against the numbers its documentation prints, so a changed
# MRMCaov cannot slip through) and seeded generated fully crossed studies. See test/fixtures/stats/README.md.
suppressPackageStartupMessages({
  library(MRMCaov)
  library(jsonlite)
})

# MRMCaov 0.3.0's jackknife ticks its progress bar by 0 after the bar has completed when every case's ratings are
# distinct (continuous ratings), which progress 1.2 refuses; a zero tick changes nothing, so let it through.
local({
  tick <- progress:::pb_tick
  assignInNamespace("pb_tick", function(self, private, len = 1, tokens = list()) {
    if (len == 0 && isTRUE(self$finished)) invisible(self) else tick(self, private, len, tokens)
  }, "progress")
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript make-mrmc-fixtures.R <out dir>")
out_dir <- args[1]

num <- function(x) unname(as.numeric(x))
row_list <- function(df, cols) {
  lapply(seq_len(nrow(df)), function(i) {
    r <- lapply(cols, function(col) {
      v <- df[[col]]
      if (is.matrix(v)) num(v[i, ]) else if (is.numeric(v)) num(v[i]) else as.character(v[i])
    })
    names(r) <- cols
    r
  })
}

fit <- function(metric, reader_term, case_term, data, cov) {
  switch(metric,
    auc = eval(substitute(mrmc(empirical_auc(truth, rating), test, R, C, data = data, cov = cov), list(R = reader_term, C = case_term))),
    sensitivity = eval(substitute(mrmc(binary_sens(truth, call), test, R, C, data = data, cov = cov), list(R = reader_term, C = case_term))),
    specificity = eval(substitute(mrmc(binary_spec(truth, call), test, R, C, data = data, cov = cov), list(R = reader_term, C = case_term)))
  )
}

analyse <- function(data, cov, metric = "auc") {
  rr <- fit(metric, quote(reader), quote(case), data, cov)
  fr <- fit(metric, quote(fixed(reader)), quote(case), data, cov)
  fc <- fit(metric, quote(reader), quote(fixed(case)), data, cov)
  s_rr <- summary(rr)
  s_fr <- summary(fr)
  s_fc <- summary(fc)
  vc <- s_rr$vcov_comps
  list(
    readerAucs = lapply(seq_len(nrow(rr$data)), function(i) list(
      test = as.character(rr$data$test[i]), reader = as.character(rr$data$reader[i]), auc = num(rr$data[[1]][i])
    )),
    cov = unname(lapply(seq_len(nrow(rr$cov)), function(i) num(rr$cov[i, ]))),
    varianceComponents = list(
      reader = num(vc$Estimate[1]), testReader = num(vc$Estimate[2]), error = num(vc$Estimate[3]),
      cov1 = num(vc$Estimate[4]), cov2 = num(vc$Estimate[5]), cov3 = num(vc$Estimate[6]),
      corr1 = num(vc$Correlation[4]), corr2 = num(vc$Correlation[5]), corr3 = num(vc$Correlation[6])
    ),
    rrrc = list(
      equality = row_list(s_rr$test_equality, c("MS(T)", "MS(T:R)", "Cov2", "Cov3", "Denominator", "F", "df1", "df2", "p-value"))[[1]],
      diffs = row_list(s_rr$test_diffs, c("Comparison", "Estimate", "StdErr", "df", "CI", "t", "p-value")),
      means = row_list(s_rr$test_means, c("Estimate", "MS(R)", "Cov2", "StdErr", "df", "CI"))
    ),
    frrc = list(
      equality = row_list(s_fr$test_equality, c("MS(T)", "Cov1", "Cov2", "Cov3", "Denominator", "X2", "df", "p-value"))[[1]],
      diffs = row_list(s_fr$test_diffs, c("Comparison", "Estimate", "StdErr", "CI", "z", "p-value")),
      means = row_list(s_fr$test_means, c("Estimate", "Var(Error)", "Cov2", "StdErr", "CI")),
      readerDiffs = row_list(s_fr$reader_test_diffs, c("Reader", "Comparison", "Estimate", "StdErr", "CI", "z", "p-value"))
    ),
    rrfc = list(
      equality = row_list(s_fc$test_equality, c("MS(T)", "MS(T:R)", "F", "df1", "df2", "p-value"))[[1]],
      diffs = row_list(s_fc$test_diffs, c("Comparison", "Estimate", "df", "StdErr", "CI", "t", "p-value")),
      means = row_list(s_fc$test_means, c("Estimate", "MS(R)", "StdErr", "df", "CI"))
    )
  )
}

# Sensitivity and specificity of the binary call rating >= cut (MRMCaov's binary_sens and binary_spec; jackknife,
# the one covariance it offers for them: over the positive cases for sensitivity, the negative ones for specificity).
write_study <- function(name, description, data, cut) {
  data <- data[order(data$test, data$reader, data$case), ]
  # One cut for every test, or one per test (named by test).
  data$call <- as.integer(data$rating >= if (is.null(names(cut))) cut else cut[as.character(data$test)])
  res <- list(
    name = name,
    description = description,
    generatedBy = list(
      script = "scripts/make-mrmc-fixtures.R",
      R = paste(R.version$major, R.version$minor, sep = "."),
      MRMCaov = as.character(packageVersion("MRMCaov"))
    ),
    ratings = list(
      test = as.character(data$test), reader = as.character(data$reader), case = as.character(data$case),
      truth = as.integer(as.character(data$truth)), rating = num(data$rating)
    ),
    binaryCut = as.list(cut),
    analyses = list(
      DeLong = analyse(data, DeLong),
      jackknife = analyse(data, jackknife),
      unbiased = analyse(data, unbiased),
      sensitivity = analyse(data, jackknife, "sensitivity"),
      specificity = analyse(data, jackknife, "specificity")
    )
  )
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = FALSE), file.path(out_dir, paste0(name, ".json")))
  invisible(res)
}

# --- VanDyke, with the numbers MRMCaov's documentation prints (User Guide; ?mrmc example). ---
vd <- data.frame(
  test = VanDyke$treatment, reader = VanDyke$reader, case = VanDyke$case, truth = VanDyke$truth, rating = VanDyke$rating
)
res <- write_study("vandyke", "MRMCaov's VanDyke data: 5 readers, 2 treatments, 114 cases (45 diseased), 5-point ratings.", vd, cut = 3)
printed <- list(
  F = 4.456319, df2 = 15.25967, p = 0.05166569, estimate = -0.04380032, stderr = 0.02074862,
  lower = -0.0879594986, upper = 0.0003588544, reader = 0.0015349993, testReader = 0.0002004025,
  error = 0.0008022883, cov1 = 0.0003466137, cov2 = 0.0003440748, cov3 = 0.0002390284
)
jk <- res$analyses$jackknife
got <- list(
  F = jk$rrrc$equality$F, df2 = jk$rrrc$equality$df2, p = jk$rrrc$equality$`p-value`,
  estimate = jk$rrrc$diffs[[1]]$Estimate, stderr = jk$rrrc$diffs[[1]]$StdErr,
  lower = jk$rrrc$diffs[[1]]$CI[1], upper = jk$rrrc$diffs[[1]]$CI[2],
  reader = jk$varianceComponents$reader, testReader = jk$varianceComponents$testReader,
  error = jk$varianceComponents$error, cov1 = jk$varianceComponents$cov1,
  cov2 = jk$varianceComponents$cov2, cov3 = jk$varianceComponents$cov3
)
for (k in names(printed)) {
  # The documentation prints 7 significant digits: half a unit in the 7th digit.
  if (abs(got[[k]] - printed[[k]]) > 5e-7 * max(1, abs(printed[[k]]))) {
    stop("VanDyke ", k, " = ", got[[k]], " differs from the documented ", printed[[k]])
  }
}

# --- Generated fully crossed studies (every reader rates every case in every test), seeded. ---
# Binormal ratings with a reader effect and a test x reader effect; cases share a latent value across readers and
# tests, so the covariances Cov1-Cov3 are all positive, as in real studies.
generate <- function(seed, n_tests, n_readers, n_pos, n_neg, levels = NULL, model = FALSE) {
  set.seed(seed)
  n <- n_pos + n_neg
  truth <- c(rep(1, n_pos), rep(0, n_neg))
  latent <- rnorm(n) + truth * 1.2
  rows <- list()
  tests <- if (model) c("MODEL", "READERS") else paste0("T", seq_len(n_tests))
  model_rating <- latent + rnorm(n, sd = 0.8)
  reader_shift <- rnorm(n_readers, sd = 0.3)
  for (ti in seq_along(tests)) {
    test_shift <- if (model) 0 else 0.25 * (ti - 1)
    for (j in seq_len(n_readers)) {
      if (model && tests[ti] == "MODEL") {
        rating <- model_rating
      } else {
        rating <- (latent + test_shift + reader_shift[j] * truth) + rnorm(n, sd = 0.9)
        if (!is.null(levels)) rating <- as.numeric(cut(rating, breaks = c(-Inf, quantile(rating, seq_len(levels - 1) / levels), Inf)))
      }
      rows[[length(rows) + 1]] <- data.frame(
        test = tests[ti], reader = sprintf("R%02d", j), case = sprintf("C%03d", seq_len(n)), truth = truth, rating = rating
      )
    }
  }
  d <- do.call(rbind, rows)
  d$test <- factor(d$test, levels = tests)
  d$reader <- factor(d$reader)
  d$case <- factor(d$case)
  d
}

write_study("crossed-ordinal", "Generated, seed 101: 2 tests, 4 readers, 30 diseased and 40 healthy cases, 5-level ratings (many ties).",
  generate(101, 2, 4, 30, 40, levels = 5), cut = 3)
write_study("crossed-continuous", "Generated, seed 202: 3 tests, 3 readers, 25 diseased and 35 healthy cases, continuous ratings.",
  generate(202, 3, 3, 25, 35), cut = 0.6)
write_study("crossed-two-readers", "Generated, seed 303: 2 tests, 2 readers, 12 diseased and 20 healthy cases, 4-level ratings.",
  generate(303, 2, 2, 12, 20, levels = 4), cut = 3)
write_study("model-vs-readers", paste(
  "Generated, seed 404: a model against 6 readers, 40 diseased and 50 healthy cases. Test MODEL repeats the model's",
  "continuous score as each reader's rating (the model as a fixed reader), test READERS holds the readers' 5-level grades."),
  generate(404, 2, 6, 40, 50, levels = 5, model = TRUE), cut = c(MODEL = 0.6, READERS = 3))
cat("wrote", length(list.files(out_dir, pattern = "json$")), "studies to", out_dir, "\n")
