SELECT e_sweep();
