"""The rollouts that drive a Router: the guided driver with its interventions, and the free rollout."""
