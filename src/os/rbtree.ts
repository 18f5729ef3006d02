/**
 * An intrusive red-black tree of disjoint ranges [lo, hi], ordered by lo — the structure Linux keeps IOVA
 * allocations in. Besides insert and erase it offers what a top-down allocator needs: predecessor/successor
 * steps, the last node, and a lower-bound search. All operations are O(log n); prev/next are amortized O(1).
 */

export class RangeNode {
  lo: number;
  hi: number;
  left: RangeNode | null = null;
  right: RangeNode | null = null;
  parent: RangeNode | null = null;
  red = true;
  constructor(lo: number, hi: number) {
    this.lo = lo;
    this.hi = hi;
  }
}

export class RangeTree {
  root: RangeNode | null = null;
  size = 0;

  first(): RangeNode | null {
    let n = this.root;
    if (!n) return null;
    while (n.left) n = n.left;
    return n;
  }

  last(): RangeNode | null {
    let n = this.root;
    if (!n) return null;
    while (n.right) n = n.right;
    return n;
  }

  static next(n: RangeNode): RangeNode | null {
    if (n.right) {
      let c = n.right;
      while (c.left) c = c.left;
      return c;
    }
    let c: RangeNode = n;
    let p = n.parent;
    while (p && c === p.right) {
      c = p;
      p = p.parent;
    }
    return p;
  }

  static prev(n: RangeNode): RangeNode | null {
    if (n.left) {
      let c = n.left;
      while (c.right) c = c.right;
      return c;
    }
    let c: RangeNode = n;
    let p = n.parent;
    while (p && c === p.left) {
      c = p;
      p = p.parent;
    }
    return p;
  }

  /** The node whose range contains `x`, or null. */
  find(x: number): RangeNode | null {
    let n = this.root;
    while (n) {
      if (x < n.lo) n = n.left;
      else if (x > n.hi) n = n.right;
      else return n;
    }
    return null;
  }

  /** The first node with lo >= x, or null. */
  lowerBound(x: number): RangeNode | null {
    let n = this.root;
    let best: RangeNode | null = null;
    while (n) {
      if (n.lo >= x) {
        best = n;
        n = n.left;
      } else n = n.right;
    }
    return best;
  }

  /** Inserts a node; `hint` (a node known to be near, e.g. the allocator's last step) is not needed for correctness. */
  insert(node: RangeNode): void {
    node.left = node.right = null;
    node.red = true;
    let parent: RangeNode | null = null;
    let cur = this.root;
    while (cur) {
      parent = cur;
      cur = node.lo < cur.lo ? cur.left : cur.right;
    }
    node.parent = parent;
    if (!parent) this.root = node;
    else if (node.lo < parent.lo) parent.left = node;
    else parent.right = node;
    this.size++;
    this.fixInsert(node);
  }

  private rotateLeft(x: RangeNode): void {
    const y = x.right!;
    x.right = y.left;
    if (y.left) y.left.parent = x;
    y.parent = x.parent;
    if (!x.parent) this.root = y;
    else if (x === x.parent.left) x.parent.left = y;
    else x.parent.right = y;
    y.left = x;
    x.parent = y;
  }

  private rotateRight(x: RangeNode): void {
    const y = x.left!;
    x.left = y.right;
    if (y.right) y.right.parent = x;
    y.parent = x.parent;
    if (!x.parent) this.root = y;
    else if (x === x.parent.right) x.parent.right = y;
    else x.parent.left = y;
    y.right = x;
    x.parent = y;
  }

  private fixInsert(z: RangeNode): void {
    while (z.parent && z.parent.red) {
      const p = z.parent;
      const g = p.parent!;
      if (p === g.left) {
        const u = g.right;
        if (u && u.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.right) {
            z = p;
            this.rotateLeft(z);
          }
          z.parent!.red = false;
          g.red = true;
          this.rotateRight(g);
        }
      } else {
        const u = g.left;
        if (u && u.red) {
          p.red = false;
          u.red = false;
          g.red = true;
          z = g;
        } else {
          if (z === p.left) {
            z = p;
            this.rotateRight(z);
          }
          z.parent!.red = false;
          g.red = true;
          this.rotateLeft(g);
        }
      }
    }
    this.root!.red = false;
  }

  private transplant(u: RangeNode, v: RangeNode | null): void {
    if (!u.parent) this.root = v;
    else if (u === u.parent.left) u.parent.left = v;
    else u.parent.right = v;
    if (v) v.parent = u.parent;
  }

  erase(z: RangeNode): void {
    let x: RangeNode | null;
    let xParent: RangeNode | null;
    let removedRed = z.red;
    if (!z.left) {
      x = z.right;
      xParent = z.parent;
      this.transplant(z, z.right);
    } else if (!z.right) {
      x = z.left;
      xParent = z.parent;
      this.transplant(z, z.left);
    } else {
      let y = z.right;
      while (y.left) y = y.left;
      removedRed = y.red;
      x = y.right;
      if (y.parent === z) {
        xParent = y;
      } else {
        xParent = y.parent;
        this.transplant(y, y.right);
        y.right = z.right;
        y.right.parent = y;
      }
      this.transplant(z, y);
      y.left = z.left;
      y.left.parent = y;
      y.red = z.red;
    }
    z.left = z.right = z.parent = null;
    this.size--;
    if (!removedRed) this.fixErase(x, xParent);
  }

  private fixErase(x: RangeNode | null, parent: RangeNode | null): void {
    while (x !== this.root && (!x || !x.red) && parent) {
      if (x === parent.left) {
        let w = parent.right!;
        if (w.red) {
          w.red = false;
          parent.red = true;
          this.rotateLeft(parent);
          w = parent.right!;
        }
        if ((!w.left || !w.left.red) && (!w.right || !w.right.red)) {
          w.red = true;
          x = parent;
          parent = x.parent;
        } else {
          if (!w.right || !w.right.red) {
            if (w.left) w.left.red = false;
            w.red = true;
            this.rotateRight(w);
            w = parent.right!;
          }
          w.red = parent.red;
          parent.red = false;
          if (w.right) w.right.red = false;
          this.rotateLeft(parent);
          x = this.root;
          parent = null;
        }
      } else {
        let w = parent.left!;
        if (w.red) {
          w.red = false;
          parent.red = true;
          this.rotateRight(parent);
          w = parent.left!;
        }
        if ((!w.left || !w.left.red) && (!w.right || !w.right.red)) {
          w.red = true;
          x = parent;
          parent = x.parent;
        } else {
          if (!w.left || !w.left.red) {
            if (w.right) w.right.red = false;
            w.red = true;
            this.rotateLeft(w);
            w = parent.left!;
          }
          w.red = parent.red;
          parent.red = false;
          if (w.left) w.left.red = false;
          this.rotateRight(parent);
          x = this.root;
          parent = null;
        }
      }
    }
    if (x) x.red = false;
  }

  /** Checks the red-black invariants and ordering; returns the black height. For tests. */
  validate(): number {
    const walk = (n: RangeNode | null, lo: number, hi: number): number => {
      if (!n) return 1;
      if (n.lo < lo || n.hi > hi || n.lo > n.hi) throw new Error(`range [${n.lo}, ${n.hi}] out of order`);
      if (n.red && ((n.left && n.left.red) || (n.right && n.right.red))) throw new Error("red node with red child");
      if (n.left && n.left.parent !== n) throw new Error("bad parent link");
      if (n.right && n.right.parent !== n) throw new Error("bad parent link");
      const l = walk(n.left, lo, n.lo - 1);
      const r = walk(n.right, n.hi + 1, hi);
      if (l !== r) throw new Error("unequal black heights");
      return l + (n.red ? 0 : 1);
    };
    if (this.root && this.root.red) throw new Error("red root");
    return walk(this.root, -Infinity, Infinity);
  }
}
