"""Runtime of the generated Taskiq wiring: broker, retries, job records, schedules, scheduler.

Generated code stays thin and imports everything it does from here.
"""
