"""One contract suite every provider passes, and the operator end to end with each provider."""
