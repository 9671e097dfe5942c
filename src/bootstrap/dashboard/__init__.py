"""The web dashboard (`bootstrap dashboard`, and a panel of `bootstrap up`): queues, failed jobs,
schedules, collections and the spec as a picture, over the same data as `status` and `jobs`."""
