"""Benchmark evaluation: load math/code sets, prompt a model, grade its answers, report with error bars.

Module map (data flows top to bottom):
  data.py         benchmark loaders -> MathItem / CodeItem records (id, problem, gold)
  prompts.py      the paper's math/code prompts, wrapped by the tokenizer's chat template
  generate.py     sampling backend (azr.generation.HFGenerator) for `--model`
  extract.py      pull the final answer / code block out of a response
  math_grader.py  math-verify in a pool of killable subprocesses (per-item timeout)
  code_grader.py  HumanEval / MBPP+ tests run inside the project sandbox
  metrics.py      pass@1, avg@k, unbiased pass@k with standard errors and bootstrap intervals
  runner.py       one benchmark end to end: prompts -> samples -> grades -> metrics
  report.py       JSON + markdown outputs and the paper's overall score
  cli.py          `azr eval math|code|grade`
"""
