"""Answers computed from the IR: per-flow verdicts, reachability matrices, policy descriptions."""
