/** A binary min-heap ordered by a numeric key captured at push time. */
export class MinHeap<T> {
  readonly #keys: number[] = []
  readonly #items: T[] = []

  get size (): number { return this.#items.length }

  /** The smallest key, or Infinity when empty. */
  peekKey (): number { return this.#items.length === 0 ? Infinity : this.#keys[0] }

  push (key: number, item: T): void {
    const keys = this.#keys
    const items = this.#items
    let i = items.length
    keys.push(key)
    items.push(item)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (keys[parent] <= key) break
      keys[i] = keys[parent]
      items[i] = items[parent]
      i = parent
    }
    keys[i] = key
    items[i] = item
  }

  /** Removes and returns the item with the smallest key. */
  pop (): T | undefined {
    const keys = this.#keys
    const items = this.#items
    if (items.length === 0) return undefined
    const top = items[0]
    const lastKey = keys.pop() as number
    const last = items.pop() as T
    const n = items.length
    if (n > 0) {
      let i = 0
      for (;;) {
        let child = 2 * i + 1
        if (child >= n) break
        if (child + 1 < n && keys[child + 1] < keys[child]) child++
        if (keys[child] >= lastKey) break
        keys[i] = keys[child]
        items[i] = items[child]
        i = child
      }
      keys[i] = lastKey
      items[i] = last
    }
    return top
  }
}
