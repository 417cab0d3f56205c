"""A pymesos scheduler driven by the conformance tests (pymesos itself is unmodified).

Prints one JSON line per event on stdout: {"ev": ..., "t": monotonic seconds, ...}. Modes:

  launch   launch one command task on the first offer; after TASK_FINISHED decline the next
           offer with filters.refuse_seconds=REFUSE and report when resources come back.
  survive  launch one long task per agent (one task per offer, up to AGENTS agents), or TASKS
           tasks wherever offered; then just report events; on re-registration run implicit
           reconciliation. DOCKER_IMAGE runs the tasks in that image.
  greedy   fill every offer with TASK_CPUS-sized tasks running `sleep SLEEP` (short tasks: the
           resources keep coming back to the allocator), declining what does not fit without a
           filter.
"""
import json
import os
import sys
import threading
import time

from pymesos import MesosSchedulerDriver, Scheduler

MODE = sys.argv[1]
MASTER = sys.argv[2]
REFUSE = float(os.environ.get("REFUSE_SECONDS", "3"))
AGENTS = int(os.environ.get("AGENTS", "1"))
TASKS = int(os.environ.get("TASKS", "0"))
DOCKER_IMAGE = os.environ.get("DOCKER_IMAGE")
ROLE = os.environ.get("ROLE", "*")
NAME = os.environ.get("NAME", "pymesos-" + MODE)
TASK_CPUS = float(os.environ.get("TASK_CPUS", "0.1"))
DEADLINE = float(os.environ.get("DEADLINE", "120"))
lock = threading.Lock()


def log(**kw):
    kw["t"] = time.monotonic()
    with lock:
        print(json.dumps(kw), flush=True)


def resources(cpus, mem):
    return [
        dict(name="cpus", type="SCALAR", scalar=dict(value=cpus)),
        dict(name="mem", type="SCALAR", scalar=dict(value=mem)),
    ]


class Sched(Scheduler):
    def __init__(self):
        self.phase = "launch"
        self.launched_on = set()
        self.done = threading.Event()
        self.tasks = 0

    def registered(self, driver, framework_id, master_info):
        log(ev="registered", framework_id=framework_id["value"], version=master_info.get("version"))

    def reregistered(self, driver, master_info):
        log(ev="reregistered")
        driver.reconcileTasks([])

    def disconnected(self, driver):
        log(ev="disconnected")

    def slaveLost(self, driver, agent_id):
        log(ev="failure", agent_id=agent_id["value"])

    def error(self, driver, message):
        log(ev="error", message=message)

    def offerRescinded(self, driver, offer_id):
        log(ev="rescind", offer_id=offer_id["value"])

    def launch(self, driver, offer, command, cpus):
        self.tasks += 1
        task = dict(
            task_id=dict(value="task-%d" % self.tasks),
            agent_id=dict(value=offer["agent_id"]["value"]),
            name="task-%d" % self.tasks,
            command=dict(value=command),
            resources=resources(cpus, 32),
        )
        if DOCKER_IMAGE:
            task["container"] = dict(type="DOCKER", docker=dict(image=DOCKER_IMAGE))
        driver.launchTasks(offer["id"], [task])
        log(ev="launched", task_id=task["task_id"]["value"], agent_id=offer["agent_id"]["value"])

    def resourceOffers(self, driver, offers):
        for offer in offers:
            agent = offer["agent_id"]["value"]
            log(ev="offer", offer_id=offer["id"]["value"], agent_id=agent,
                resources=offer["resources"])
            if MODE == "greedy":
                self.fill(driver, offer)
                continue
            if MODE == "launch":
                if self.phase == "launch":
                    self.phase = "running"
                    self.launch(driver, offer, "echo hello-from-pymesos && sleep 1", TASK_CPUS)
                elif self.phase == "decline":
                    self.phase = "declined"
                    driver.declineOffer(offer["id"], filters=dict(refuse_seconds=REFUSE))
                    log(ev="declined", refuse_seconds=REFUSE)
                elif self.phase == "declined":
                    log(ev="reoffered", offer_id=offer["id"]["value"])
                    self.phase = "end"
                    driver.declineOffer(offer["id"])
                    self.done.set()
                else:
                    driver.declineOffer(offer["id"], filters=dict(refuse_seconds=0.2))
            else:
                if TASKS and self.tasks < TASKS:
                    self.launch(driver, offer, "exec sleep %s" % os.environ.get("SLEEP", "600"), TASK_CPUS)
                elif not TASKS and agent not in self.launched_on and len(self.launched_on) < AGENTS:
                    self.launched_on.add(agent)
                    self.launch(driver, offer, "exec sleep %s" % os.environ.get("SLEEP", "600"), TASK_CPUS)
                else:
                    driver.declineOffer(offer["id"], filters=dict(refuse_seconds=1))

    def fill(self, driver, offer):
        cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
        mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
        tasks = []
        while cpus >= TASK_CPUS - 1e-9 and mem >= 32:
            self.tasks += 1
            tasks.append(dict(
                task_id=dict(value="greedy-%d" % self.tasks),
                agent_id=dict(value=offer["agent_id"]["value"]),
                name="greedy-%d" % self.tasks,
                command=dict(value="sleep %s" % os.environ.get("SLEEP", "2")),
                resources=resources(TASK_CPUS, 32),
            ))
            cpus -= TASK_CPUS
            mem -= 32
        if tasks:
            driver.launchTasks(offer["id"], tasks, filters=dict(refuse_seconds=0))
        else:
            driver.declineOffer(offer["id"], filters=dict(refuse_seconds=0))

    def statusUpdate(self, driver, status):
        log(ev="update", task_id=status["task_id"]["value"], state=status["state"],
            reason=status.get("reason"), source=status.get("source"),
            has_uuid="uuid" in status, agent_id=status.get("agent_id", {}).get("value"),
            message=status.get("message"))
        if MODE == "launch" and status["state"] == "TASK_FINISHED":
            self.phase = "decline"


def main():
    sched = Sched()
    framework = dict(user="", name=NAME, roles=[ROLE], capabilities=[dict(type="MULTI_ROLE")],
                     failover_timeout=600)
    driver = MesosSchedulerDriver(sched, framework, MASTER, use_addict=False)
    driver.start()
    finished = sched.done.wait(DEADLINE)
    log(ev="exit", finished=finished)
    driver.stop(failover=(MODE != "launch"))
    driver.join()


if __name__ == "__main__":
    main()
