// Inference module
