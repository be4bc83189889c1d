# Reference DeLong numbers from pROC for scripts/make-stats-fixtures.py (which runs it; see that file).
#
#   Rscript scripts/stats-reference.R data.csv
#
# data.csv has the columns truth (0/1), score and scoreB. Prints one "key value" line per number, each value
# with sprintf("%.17g") (full double precision; NA/NaN where pROC cannot compute it), so neither side needs
# jsonlite. The ROC curves are built with levels = c(0, 1) and direction = "<" (higher score = positive),
# the same orientation as sklearn's roc_auc_score, and never flipped.
suppressPackageStartupMessages(library(pROC))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript stats-reference.R data.csv")
d <- read.csv(args[1], colClasses = c("integer", "numeric", "numeric"))

out <- function(key, value) cat(sprintf("%s %.17g\n", key, as.numeric(value)))

cat(sprintf("pROC_version %s\n", as.character(packageVersion("pROC"))))
cat(sprintf("R_version %s.%s\n", R.version$major, R.version$minor))

rocA <- roc(d$truth, d$score, levels = c(0, 1), direction = "<", quiet = TRUE)
rocB <- roc(d$truth, d$scoreB, levels = c(0, 1), direction = "<", quiet = TRUE)

out("auc", auc(rocA))
out("delong.variance", var(rocA, method = "delong"))
ci <- ci.auc(rocA, method = "delong", conf.level = 0.95)  # c(lower, auc, upper)
out("delong.lo", ci[1])
out("delong.auc", ci[2])
out("delong.hi", ci[3])

# Paired DeLong test of score vs scoreB on the same rows. It can fail outright (e.g. both curves perfect);
# then the whole pairedDelong block is NA.
t <- tryCatch(roc.test(rocA, rocB, method = "delong", paired = TRUE), error = function(e) {
  message("roc.test failed: ", conditionMessage(e))
  NULL
})
if (is.null(t)) {
  for (k in c("aucA", "aucB", "z", "p")) out(paste0("paired.", k), NA)
} else {
  out("paired.aucA", t$estimate[1])
  out("paired.aucB", t$estimate[2])
  out("paired.z", t$statistic)
  out("paired.p", t$p.value)
}
