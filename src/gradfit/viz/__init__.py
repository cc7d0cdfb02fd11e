"""Pictures: plots, the loss surface and animation, and the HTML report."""
