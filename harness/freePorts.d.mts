/** Free loopback ports, outside the kernel's range for outgoing connections (harness/freePorts.mjs). */
export function freePorts(count: number): Promise<number[]>;
