"""A faithful TF2/Keras port of TensorFlow's MNIST convolutional tutorial, optionally overparameterized."""
