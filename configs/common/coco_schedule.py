from detectron2_export.config import LazyCall as L

# Training only (see README.md): fvcore's and detectron2's LR schedulers.
MultiStepParamScheduler = "fvcore.common.param_scheduler.MultiStepParamScheduler"
WarmupParamScheduler = "detectron2.solver.WarmupParamScheduler"


def default_X_scheduler(num_X):
    """
    The config of the default multi-step LR schedule "1x", "3x", ... of papers: every 1x is
    1440k training images (~12 COCO epochs, 90k iterations at batch size 16), and the LR decays
    twice near the end ("Rethinking ImageNet Pre-training", Sec 4).

    Args:
        num_X: a positive real number

    Returns:
        DictConfig: the multiplier of the LR during training
    """
    # total number of iterations assuming 16 batch size, using 1440000/16=90000
    total_steps_16bs = num_X * 90000

    if num_X <= 2:
        scheduler = L(MultiStepParamScheduler)(
            values=[1.0, 0.1, 0.01],
            # the scheduler is scale-invariant: the same as milestones=[6, 8], num_updates=9
            milestones=[60000, 80000],
            num_updates=90000,
        )
    else:
        scheduler = L(MultiStepParamScheduler)(
            values=[1.0, 0.1, 0.01],
            milestones=[total_steps_16bs - 60000, total_steps_16bs - 20000],
            num_updates=total_steps_16bs,
        )
    return L(WarmupParamScheduler)(
        scheduler=scheduler,
        warmup_length=1000 / total_steps_16bs,
        warmup_method="linear",
        warmup_factor=0.001,
    )


lr_multiplier_1x = default_X_scheduler(1)
lr_multiplier_2x = default_X_scheduler(2)
lr_multiplier_3x = default_X_scheduler(3)
lr_multiplier_6x = default_X_scheduler(6)
lr_multiplier_9x = default_X_scheduler(9)
