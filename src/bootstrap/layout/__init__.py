"""Where things live in Redis: key names and the stored form of schedules, shared by the engine,
the job layer and status."""
