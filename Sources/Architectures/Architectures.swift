// Architectures module
