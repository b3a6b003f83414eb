# Sourced by the command-line tests: losses METRICS.jsonl prints "step loss" for each train line.
losses() {
  grep '"kind":"train"' "$1" | sed -E 's/.*"step":([0-9]+).*"loss":([^,}]+).*/\1 \2/'
}
