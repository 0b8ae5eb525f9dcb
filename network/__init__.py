"""The Potjans & Diesmann (2014) cortical microcircuit core with a pluggable neuron model."""
