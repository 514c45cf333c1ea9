// MergeMethods module
