"""EDST (docs/algorithms.md §4): one DST run of `epochs` epochs that explores for
`edst.exploration_epochs`, then harvests one ticket per refinement phase,
with a global exploration before phases 2..M (`EDSTCallback` decides when).
An interrupted run resumes from the checkpoint of its last epoch."""

from freetickets_tf.callbacks.edst import EDSTCallback


def train(recipe):
    """Trains (or finishes) the one EDST run of `recipe`."""
    config, seed, run = recipe.config, recipe.config.seed, recipe.run
    if run.complete:
        recipe.say(f"EDST run in {run.path} is already complete.")
        return
    model = recipe.compile(recipe.new_sparse_model(seed), config.optimizer.learning_rate)
    dst = recipe.dst_callback(seed, None)
    counter = recipe.flops_callback(dst)
    schedule = config.edst_schedule()
    edst = EDSTCallback(
        dst,
        run,
        config.epochs,
        config.edst.exploration_epochs,
        config.num_members,
        large_death_rate=config.edst.large_death_rate,
        learning_rates=schedule.learning_rates,
        phase_milestones=schedule.phase_milestones,
        exploration_milestones=schedule.exploration_milestones,
        warmup_epochs=schedule.warmup_epochs,
        monitor=config.monitor,
        selection=config.selection,
        seed=seed,
        flops_callback=counter,
        verbose=config.verbose,
    )
    recipe.fit(model, config.epochs, [dst, counter, edst], {"member": None, "stage": "edst"},
               edst.snapshot, counter, member=lambda epoch: schedule.phase_of(epoch) or 0)
