"""The search harness: Ray Tune + Optuna over vgd's training. Ray and Optuna live only here."""
