"""``OptimizationApp`` (test double): runs the trainer step function until it stops."""


class OptimizationApp:
    def __init__(self, wisp_state, trainer_step_func, experiment_name):
        self.wisp_state, self.step = wisp_state, trainer_step_func

    def run(self):
        self.wisp_state.optimization.running = True
        while self.wisp_state.optimization.running:
            self.step()
