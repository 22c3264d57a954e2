/** A ring-buffer double-ended queue: O(1) push, unshift and shift at any depth. */
export class Deque<T> {
  #items: (T | undefined)[] = new Array(16)
  #head = 0
  #size = 0

  get size (): number { return this.#size }

  push (item: T): void {
    if (this.#size === this.#items.length) this.#grow()
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item
    this.#size++
  }

  unshift (item: T): void {
    if (this.#size === this.#items.length) this.#grow()
    this.#head = (this.#head - 1) & (this.#items.length - 1)
    this.#items[this.#head] = item
    this.#size++
  }

  shift (): T | undefined {
    if (this.#size === 0) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined // let the GC take it
    this.#head = (this.#head + 1) & (this.#items.length - 1)
    this.#size--
    return item
  }

  /** The item `i` places from the head (0 ≤ i < size), without removing it. */
  at (i: number): T | undefined {
    return i < this.#size ? this.#items[(this.#head + i) & (this.#items.length - 1)] : undefined
  }

  // Capacity stays a power of two so index wrapping is a mask, not a modulo.
  #grow (): void {
    const old = this.#items
    const next: (T | undefined)[] = new Array(old.length * 2)
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & (old.length - 1)]
    this.#items = next
    this.#head = 0
  }
}
