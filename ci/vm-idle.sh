# Sourced by the benchmarks whose figures depend on how fast a sleeping thread wakes up
# (ci/bench-remote.sh, ci/bench-nfs.sh). On a virtual machine whose idle vCPUs halt at once
# (this project's CI and development VMs boot with haltpoll.guest_halt_poll_ns=0), waking a
# thread on an idle vCPU costs tens of microseconds, more than a loopback round trip, so a
# pipeline of several threads measures the machine more than the code. These helpers say
# which case a run was in, and let a run opt in to halt polling.
#
#   vm_idle_describe             # one line: cpuidle driver and guest halt-poll time
#   vm_idle_poll NS              # sets the guest halt-poll time for this run (root; restored
#                                # by vm_idle_restore, which the caller's EXIT trap must call)
#   vm_idle_restore

VM_IDLE_PARAM=/sys/module/haltpoll/parameters/guest_halt_poll_ns
VM_IDLE_SAVED=

vm_idle_describe() {
    local driver
    driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)
    if [ -r "$VM_IDLE_PARAM" ]; then
        echo "machine: $(nproc) CPUs, cpuidle $driver, guest halt polling $(cat "$VM_IDLE_PARAM") ns"
    else
        echo "machine: $(nproc) CPUs, cpuidle $driver (no guest halt polling)"
    fi
}

vm_idle_poll() {
    local ns=$1
    if [ ! -w "$VM_IDLE_PARAM" ]; then
        echo "vm-idle: cannot set $VM_IDLE_PARAM (not a haltpoll guest, or not root)" >&2
        return 1
    fi
    [ -n "$VM_IDLE_SAVED" ] || VM_IDLE_SAVED=$(cat "$VM_IDLE_PARAM")
    echo "$ns" >"$VM_IDLE_PARAM"
}

vm_idle_restore() {
    if [ -n "$VM_IDLE_SAVED" ]; then
        echo "$VM_IDLE_SAVED" >"$VM_IDLE_PARAM" || true
        VM_IDLE_SAVED=
    fi
}
