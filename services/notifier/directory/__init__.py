"""The notifier's directory: users and their contact methods, teams, on-call schedules; pure, no I/O."""
