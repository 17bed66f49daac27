// SPDX-License-Identifier: GPL-2.0

/*
 * Helpers for rust/kvm_shrinker: static inline functions and macros of the
 * memcg, list_lru, NUMA node and scheduler APIs, and their !CONFIG_MEMCG
 * variants, in one place.
 */

#include <linux/cgroup.h>
#include <linux/list_lru.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>

/*
 * nr_node_ids is a variable, and a constant without NUMA; a helper named
 * after it would be hidden by the variable's binding.
 */
__rust_helper unsigned int rust_helper_get_nr_node_ids(void)
{
	return nr_node_ids;
}

/* The caller checks that 0 <= nid < nr_node_ids. */
__rust_helper bool rust_helper_node_possible(int nid)
{
	return node_possible(nid);
}

__rust_helper void rust_helper_cond_resched(void)
{
	cond_resched();
}

__rust_helper bool rust_helper_mem_cgroup_disabled(void)
{
	return mem_cgroup_disabled();
}

__rust_helper bool rust_helper_mem_cgroup_is_root(struct mem_cgroup *memcg)
{
	return mem_cgroup_is_root(memcg);
}

__rust_helper unsigned short rust_helper_mem_cgroup_private_id(struct mem_cgroup *memcg)
{
	return mem_cgroup_private_id(memcg);
}

__rust_helper void rust_helper_mem_cgroup_put(struct mem_cgroup *memcg)
{
	mem_cgroup_put(memcg);
}

#ifdef CONFIG_MEMCG
__rust_helper void rust_helper_mem_cgroup_get(struct mem_cgroup *memcg)
{
	css_get(&memcg->css);
}

__rust_helper u64 rust_helper_mem_cgroup_ino(struct mem_cgroup *memcg)
{
	return cgroup_ino(memcg->css.cgroup);
}

struct mem_cgroup *rust_helper_get_mem_cgroup_from_slab_obj(void *p)
{
	struct mem_cgroup *memcg;

	rcu_read_lock();
	memcg = mem_cgroup_from_virt(p);
	/* A dying memcg may be past its last reference: use its parent. */
	while (memcg && !css_tryget(&memcg->css))
		memcg = parent_mem_cgroup(memcg);
	rcu_read_unlock();
	return memcg;
}

/*
 * Not get_mem_cgroup_from_folio(), which reads folio_memcg() outside the
 * RCU read lock: for a kmem folio that goes through obj_cgroup_memcg(),
 * which lockdep checks, and the memcg may be freed meanwhile.
 */
struct mem_cgroup *rust_helper_get_mem_cgroup_from_page(struct page *page)
{
	struct mem_cgroup *memcg;

	if (mem_cgroup_disabled())
		return NULL;

	rcu_read_lock();
	memcg = folio_memcg(page_folio(page));
	/* An uncharged page belongs to the root memcg. */
	if (!memcg)
		memcg = root_mem_cgroup;
	/* As above; the root memcg is never released. */
	while (!css_tryget(&memcg->css))
		memcg = parent_mem_cgroup(memcg);
	rcu_read_unlock();
	return memcg;
}

__rust_helper int
rust_helper_memcg_list_lru_prepare(struct mem_cgroup *memcg,
				   struct list_lru *lru, gfp_t gfp)
{
	return memcg_list_lru_alloc(memcg, lru, gfp);
}
#else
__rust_helper void rust_helper_mem_cgroup_get(struct mem_cgroup *memcg)
{
}

__rust_helper u64 rust_helper_mem_cgroup_ino(struct mem_cgroup *memcg)
{
	return 0;
}

struct mem_cgroup *rust_helper_get_mem_cgroup_from_slab_obj(void *p)
{
	return NULL;
}

struct mem_cgroup *rust_helper_get_mem_cgroup_from_page(struct page *page)
{
	return NULL;
}

__rust_helper int
rust_helper_memcg_list_lru_prepare(struct mem_cgroup *memcg,
				   struct list_lru *lru, gfp_t gfp)
{
	return 0;
}
#endif

/*
 * list_lru_add() and list_lru_del() of an item that lives in the struct page
 * of @page, filed under the page's node and the memcg it is charged to,
 * which is looked up under RCU as list_lru_add_obj() does for slab objects:
 * no reference is taken.  Adding allocates the memcg's lists, without
 * sleeping, if they do not exist; if that fails nothing is added.
 */
__rust_helper bool rust_helper_list_lru_add_page(struct list_lru *lru,
						 struct list_head *item,
						 struct page *page)
{
	struct mem_cgroup *memcg;
	bool ret = false;

	rcu_read_lock();
	memcg = folio_memcg(page_folio(page));
	if (!memcg || !memcg_list_lru_alloc(memcg, lru, GFP_NOWAIT))
		ret = list_lru_add(lru, item, page_to_nid(page), memcg);
	rcu_read_unlock();
	return ret;
}

__rust_helper bool rust_helper_list_lru_del_page(struct list_lru *lru,
						 struct list_head *item,
						 struct page *page)
{
	bool ret;

	rcu_read_lock();
	ret = list_lru_del(lru, item, page_to_nid(page),
			   folio_memcg(page_folio(page)));
	rcu_read_unlock();
	return ret;
}

/* A list_lru with a lock class of its own (lockdep), for any shrinker. */
__rust_helper int
rust_helper_list_lru_init_key(struct list_lru *lru, bool memcg_aware,
			      struct shrinker *shrinker,
			      struct lock_class_key *key)
{
#ifdef CONFIG_LOCKDEP
	lru->key = key;
#endif
	return __list_lru_init(lru, memcg_aware, shrinker);
}

/* A wrapper: without CONFIG_MEMCG, get_mem_cgroup_from_current() is inline. */
struct mem_cgroup *rust_helper_get_current_mem_cgroup(void)
{
	return get_mem_cgroup_from_current();
}
