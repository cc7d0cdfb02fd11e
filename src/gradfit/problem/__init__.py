"""The problem: losses, penalties and the objective F(w, b) they make; pure math on tensors."""
